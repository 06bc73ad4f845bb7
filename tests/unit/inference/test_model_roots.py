"""The model allow-list of live switches: registry names, or folders under the configured roots."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream_app.inference.model_roots import ModelNotAllowed, allowed_model


@pytest.fixture
def roots(tmp_path: Path) -> list[str]:
    root = tmp_path / "models"
    (root / "whisper-small").mkdir(parents=True)
    return [str(root)]


@pytest.mark.parametrize("name", ["tiny.en", "base"])
def test_registry_names_are_always_allowed(name: str) -> None:
    assert allowed_model(name, []) == name


def test_a_folder_under_a_root_is_allowed_resolved(roots: list[str], tmp_path: Path) -> None:
    assert allowed_model(f"{roots[0]}/whisper-small", roots) == str((tmp_path / "models/whisper-small").resolve())
    assert allowed_model(f"{roots[0]}/not-there-yet", roots).endswith("not-there-yet")  # the load says it is missing


def test_a_root_reached_through_a_symlink_still_counts(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "m").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    assert allowed_model(str(link / "m"), [str(link)]) == str((real / "m").resolve())


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        ("whisper-small", "absolute folder path"),
        ("./models/whisper-small", "absolute folder path"),
        ("~/models/x", "home folder"),
        ("~root/models/x", "home folder"),
        ("ROOT/../../etc", "'..'"),
        ("ROOT/whisper-small/../../x", "'..'"),
        ("/etc", "outside the model roots"),
        ("", "not a model name"),
        ("ROOT/a\x00b", "not a model name"),
        ("Tiny.en", "absolute folder path"),
    ],
)
def test_everything_else_is_refused_with_the_reason(roots: list[str], request_: str, reason: str) -> None:
    with pytest.raises(ModelNotAllowed, match=reason):
        allowed_model(request_.replace("ROOT", roots[0]), roots)


def test_a_symlink_out_of_the_roots_is_refused(roots: list[str], tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (Path(roots[0]) / "escape").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ModelNotAllowed, match=r"outside the model roots \(through a link\)") as refused:
        allowed_model(f"{roots[0]}/escape", roots)
    assert str(outside) not in str(refused.value)  # the refusal is published: it does not map the file system


def test_a_sibling_with_a_common_prefix_is_outside(roots: list[str]) -> None:
    sibling = roots[0] + "-evil"
    Path(sibling).mkdir()
    with pytest.raises(ModelNotAllowed, match="outside"):
        allowed_model(sibling, roots)


def test_without_roots_only_the_registry(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAllowed, match=r"no optimization\.model_roots"):
        allowed_model(str(tmp_path), [])
