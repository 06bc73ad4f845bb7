"""Errors raised while reading or converting audio."""

from __future__ import annotations

from pathlib import Path


class AudioFileError(ValueError):
    """An audio file that cannot be read, or holds no audio; the message names the file."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read audio file '{path}': {reason}")
