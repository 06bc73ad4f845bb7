r"""What a batch run reports: one record per file (a JSONL journal line) and a summary.

The journal is appended to as each file finishes, so a run that dies keeps what it did; a re-run
reads it back and skips the files recorded as succeeded (same path, size and modification time).
Paths are written as `journal_path` spells them: a name that is not valid UTF-8 keeps its odd bytes
as ``\xNN`` escapes (JSON holds Unicode text only).
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
    mtime_ns: int | None = None  # the file's modification time when it was read (None: it could not be)
    # Speech the model left without words, file seconds: the text misses what was said there.
    undecoded: tuple[tuple[float, float], ...] = ()

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
        record["path"] = journal_path(self.path)
        record["error"] = None if self.error is None else _printable(self.error)
        record["segments"] = [
            {**segment, "words": [_word_json(w) for w in segment["words"]]} for segment in record["segments"]
        ]
        return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY)

    def unwritable(self, exc: Exception) -> FileResult:
        """Return the failure that stands for this record when it cannot be serialised."""
        return FileResult(
            self.path,
            "failed",
            size=self.size,
            duration=self.duration,
            error=f"its journal record could not be written: {type(exc).__name__}: {exc}",
            mtime_ns=self.mtime_ns,
        )


@dataclass(frozen=True)
class FileStamp:
    """What says a file is the one journaled: its size and modification time."""

    size: int
    mtime_ns: int | None

    @classmethod
    def of(cls, path: Path) -> FileStamp:
        """Return the file's stamp now; ``(-1, None)`` when it cannot be read (it then fails with the reason)."""
        try:
            info = path.stat()
        except OSError:
            return cls(-1, None)
        return cls(info.st_size, info.st_mtime_ns)


def journal_path(path: str | Path) -> str:
    r"""Return ``path`` as the journal spells it: each byte that is not UTF-8 as a ``\xNN`` escape.

    A file name is bytes; one that is not valid UTF-8 (``b"m\xe9lange.wav"``) is a string with
    surrogates in Python, which JSON cannot hold. Resuming and subtitles compare paths in this form.
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _printable(text: str) -> str:
    """Return ``text`` with lone surrogates (a file name's odd bytes in an error message) escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


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
            torn = _ends_torn(path)
            self._handle = path.open("ab")
            if torn:  # a run killed mid-write: the next record starts a line of its own
                self._handle.write(b"\n")
                self._handle.flush()

    def append(self, result: FileResult) -> FileResult:
        """Write one record and flush it, so an interrupted run keeps it; return the record written.

        A record that cannot be serialised is written as that file's failure (`FileResult.unwritable`),
        so one file never stops the run.
        """
        if self._handle is None:
            return result
        try:
            line = result.to_json()
        except TypeError as exc:  # orjson.JSONEncodeError is one
            log.warning("%s: its journal record cannot be serialised (%s)", journal_path(result.path), exc)
            result = result.unwritable(exc)
            line = result.to_json()
        with self._lock:
            self._handle.write(line + b"\n")
            self._handle.flush()
        return result

    def close(self) -> None:
        """Close the file."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _ends_torn(path: Path) -> bool:
    """Whether the file at ``path`` ends in a line without its newline."""
    try:
        with path.open("rb") as handle:
            if handle.seek(0, os.SEEK_END) == 0:
                return False
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"
    except FileNotFoundError:
        return False


def succeeded_records(path: Path | None) -> dict[str, dict[str, Any]]:
    """Map each path (as `journal_path` spells it) to its latest record in a journal, where that record succeeded.

    The latest record of a path counts: a later failure undoes an earlier success. A line that is not a
    JSON record (a run killed mid-write) is ignored. Empty if there is no journal.
    """
    latest: dict[str, dict[str, Any]] = {}
    if path is None or not path.is_file():
        return latest
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                record = None
            if not isinstance(record, dict):
                log.warning("%s:%d is not a JSON record; ignoring it", path, number)
                continue
            if record.get("status") == "ok":
                latest[str(record.get("path"))] = record
            else:
                latest.pop(str(record.get("path")), None)
    return latest


def completed_files(path: Path | None) -> dict[str, FileStamp]:
    """Map each path recorded as succeeded in a journal (by `journal_path`) to its stamp (`succeeded_records`)."""
    stamps = {name: _recorded_stamp(record) for name, record in succeeded_records(path).items()}
    return {name: stamp for name, stamp in stamps.items() if stamp is not None}


def _recorded_stamp(record: dict[str, Any]) -> FileStamp | None:
    """Return the stamp of a succeeded record.

    A record without ``mtime_ns`` (journals before it was recorded) is not trusted (None): its file may have
    changed at the same size, so it is transcribed again, once.
    """
    mtime_ns = record.get("mtime_ns")
    if not isinstance(mtime_ns, int):
        return None
    return FileStamp(int(record.get("size", 0)), mtime_ns)


def summary_path(output: Path) -> Path:
    """Where the summary of a journal goes: ``<output>.summary.json``."""
    return output.with_name(output.name + ".summary.json")


def write_summary(output: Path, result: BatchResult) -> Path:
    """Write the summary JSON next to the journal, atomically."""
    target = summary_path(output)
    target.parent.mkdir(parents=True, exist_ok=True)  # a run with nothing to do never opened the journal
    replace_file(target, orjson.dumps(result.summary(), option=orjson.OPT_INDENT_2))
    return target


def join_text(segments: Iterable[FileSegment]) -> str:
    """Join a file's text from its segments."""
    return " ".join(s.text for s in segments if s.text).strip()


def replace_file(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a file beside it, so a reader sees the old file or the new, whole."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        partial.write_bytes(data)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
