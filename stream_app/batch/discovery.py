"""Finding the audio files a batch run is asked for: files as given, folders searched recursively."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

AUDIO_EXTENSIONS = frozenset(
    {
        ".wav",
        ".flac",
        ".mp3",
        ".ogg",
        ".oga",
        ".opus",
        ".m4a",
        ".aac",
        ".wma",
        ".aif",
        ".aiff",
        ".webm",
        ".mp4",
    }
)


def find_audio_files(paths: Iterable[str | Path]) -> list[Path]:
    """Return the files to transcribe, absolute, each once, in a stable (sorted per folder) order.

    A path named explicitly is taken whatever its extension (the user asked for it; if it is not
    audio it fails with a reason); inside folders only audio extensions count. A named path that
    does not exist (or cannot be reached: a symlink loop) is kept too, and fails with the reason, so
    one mistyped name among many does not stop the run.

    Raises:
        FileNotFoundError: none of the given paths exists.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    named, missing = 0, []
    for raw in paths:
        named += 1
        path = Path(raw).expanduser().absolute()
        if not path.exists():
            missing.append(str(raw))
        for candidate in sorted(_walk(path)) if path.is_dir() else [path]:
            if candidate not in seen:
                seen.add(candidate)
                found.append(candidate)
    if missing and len(missing) == named:
        raise FileNotFoundError(f"no such file or folder: {', '.join(missing)}")
    return found


def _walk(folder: Path) -> Iterable[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if Path(name).suffix.lower() in AUDIO_EXTENSIONS and not name.startswith("."):
                yield Path(root) / name
