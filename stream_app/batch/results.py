"""What a batch run reports: one record per file (a JSONL journal line) and a summary.

The journal is appended to as each file finishes, so a run that dies keeps what it did; a re-run
reads it back and skips the files recorded as succeeded (same path and size).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from stream_app.inference.types import Word

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileSegment:
    """Text of one piece (up to one window) of a file, times in file seconds."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class FileResult:
    """The outcome for one file: its text and segments, or why it failed."""

    path: str
    status: str  # "ok" or "failed"
    size: int = 0
    duration: float = 0.0
    text: str = ""
    segments: tuple[FileSegment, ...] = ()
    error: str | None = None
    model: str | None = None

    @property
    def succeeded(self) -> bool:
        """Whether the file was transcribed."""
        return self.status == "ok"

    def to_json(self) -> bytes:
        """Serialise as one journal line (without the newline); words as the transcripts topic has them.

        A word is ``{"start", "end", "word", "probability"}``, as in transcript-segment.v3.json, so one
        reader handles both the topic and the journal.
        """
        record = asdict(self)
        record["segments"] = [
            {**segment, "words": [_word_json(w) for w in segment["words"]]} for segment in record["segments"]
        ]
        return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY)


def _word_json(word: dict[str, Any]) -> dict[str, Any]:
    return {"start": word["start"], "end": word["end"], "word": word["text"], "probability": word["probability"]}


@dataclass
class BatchResult:
    """Counts and speed of one run; ``results`` holds the files of this run (skipped ones excluded)."""

    total: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    windows: int = 0
    results: list[FileResult] = field(default_factory=list)

    @property
    def rtf(self) -> float:
        """Real-time factor: wall seconds per second of audio (below 1 is faster than real time)."""
        return self.wall_seconds / self.audio_seconds if self.audio_seconds > 0 else 0.0

    @property
    def rtx(self) -> float:
        """Times real time: seconds of audio per wall second (the inverse of ``rtf``)."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def record(self, result: FileResult) -> None:
        """Count a finished file."""
        self.results.append(result)
        if result.succeeded:
            self.succeeded += 1
            self.audio_seconds += result.duration
        else:
            self.failed += 1

    def summary(self) -> dict[str, Any]:
        """Return the figures printed and written next to the journal."""
        return {
            "total": self.total,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "skipped": self.skipped,
            "audio_seconds": round(self.audio_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "rtf": round(self.rtf, 5),
            "rtx": round(self.rtx, 3),
            "windows": self.windows,
        }


class Journal:
    """The append-only JSONL file of finished files; safe to call from several threads."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._handle = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = path.open("ab")

    def append(self, result: FileResult) -> None:
        """Write one record and flush it, so an interrupted run keeps it."""
        if self._handle is None:
            return
        with self._lock:
            self._handle.write(result.to_json() + b"\n")
            self._handle.flush()

    def close(self) -> None:
        """Close the file."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def completed_files(path: Path | None) -> dict[str, int]:
    """Map each path recorded as succeeded in a journal to its recorded size (empty if no journal).

    A torn last line (a run killed mid-write) is ignored.
    """
    done: dict[str, int] = {}
    if path is None or not path.is_file():
        return done
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                log.warning("%s:%d is not a JSON record; ignoring it", path, number)
                continue
            if record.get("status") == "ok":
                done[str(record["path"])] = int(record.get("size", 0))
            else:
                done.pop(str(record.get("path")), None)
    return done


def summary_path(output: Path) -> Path:
    """Where the summary of a journal goes: ``<output>.summary.json``."""
    return output.with_name(output.name + ".summary.json")


def write_summary(output: Path, result: BatchResult) -> Path:
    """Write the summary JSON next to the journal, atomically."""
    target = summary_path(output)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(orjson.dumps(result.summary(), option=orjson.OPT_INDENT_2))
    os.replace(tmp, target)
    return target


def join_text(segments: Iterable[FileSegment]) -> str:
    """Join a file's text from its segments."""
    return " ".join(s.text for s in segments if s.text).strip()
