"""Subtitle files for a batch run, written from its journal (so files skipped as done get theirs too)."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson

from stream_app.captions.subtitles import Cue, cues_from_words, render

log = logging.getLogger(__name__)


def latest_records(journal: Path, paths: Iterable[Path]) -> dict[str, dict[str, Any]]:
    """Return the last succeeded record of each of ``paths`` in the journal."""
    wanted = {str(p) for p in paths}
    latest: dict[str, dict[str, Any]] = {}
    if not journal.is_file():
        return latest
    for line in journal.read_bytes().splitlines():
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        path = str(record.get("path"))
        if path in wanted and record.get("status") == "ok":
            latest[path] = record
    return latest


def record_cues(record: dict[str, Any]) -> list[Cue]:
    """Cues of one journal record: each segment's words (``word``; ``text`` in journals before v3 naming)."""
    cues: list[Cue] = []
    for segment in record.get("segments", []):
        words = [
            SimpleNamespace(start=w["start"], end=w["end"], text=w.get("word", w.get("text", "")))
            for w in segment.get("words", [])
        ]
        cues += cues_from_words(words)
    return cues


def subtitle_names(paths: list[str], fmt: str) -> dict[str, str]:
    """File name per audio path: ``<stem>.<fmt>``, with a hash of the path where two files share a stem."""
    stems = Counter(Path(p).stem for p in paths)
    names = {}
    for path in paths:
        stem = Path(path).stem
        if stems[stem] > 1:
            stem += "-" + hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:8]
        names[path] = f"{stem}.{fmt}"
    return names


def write_subtitles(journal: Path, paths: Iterable[Path], fmt: str, folder: Path) -> list[Path]:
    """Write one ``fmt`` file per succeeded audio file into ``folder``; return what was written."""
    records = latest_records(journal, paths)
    folder.mkdir(parents=True, exist_ok=True)
    names = subtitle_names(sorted(records), fmt)
    written = []
    for path, record in sorted(records.items()):
        target = folder / names[path]
        target.write_text(render(record_cues(record), fmt), encoding="utf-8")
        written.append(target)
    return written
