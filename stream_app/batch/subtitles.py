"""Subtitle files for a batch run, written from its journal (so files skipped as done get theirs too)."""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from stream_app.batch.results import journal_path, replace_file, succeeded_records
from stream_app.captions.subtitles import Cue, cues_from_words, render, settle_cues

log = logging.getLogger(__name__)


def latest_records(journal: Path, paths: Iterable[Path]) -> dict[str, dict[str, Any]]:
    """Return the latest record of each of ``paths`` in the journal where it succeeded, by `journal_path`.

    A file whose last run failed has no subtitles, even if an earlier run transcribed it (`succeeded_records`).
    """
    wanted = {journal_path(p) for p in paths}
    return {name: record for name, record in succeeded_records(journal).items() if name in wanted}


def record_cues(record: dict[str, Any]) -> list[Cue]:
    """Cues of one journal record: each segment's words (``word``; ``text`` in journals before v3 naming).

    Joined across segments, a cue ends by the next one's start and by the file's end (`settle_cues`).
    """
    cues: list[Cue] = []
    for segment in record.get("segments", []):
        words = [
            SimpleNamespace(start=w["start"], end=w["end"], text=w.get("word", w.get("text", "")))
            for w in segment.get("words", [])
        ]
        cues += cues_from_words(words)
    duration = record.get("duration")
    return settle_cues(cues, float(duration) if isinstance(duration, int | float) and duration > 0 else None)


def subtitle_names(paths: list[str], fmt: str) -> dict[str, str]:
    """File name per audio path: ``<stem>.<fmt>``, with a hash of the path where two files share a stem."""
    stems = Counter(Path(p).stem for p in paths)
    names = {}
    for path in paths:
        stem = Path(path).stem
        if stems[stem] > 1:
            stem += "-" + hashlib.sha1(os.fsencode(Path(path).resolve())).hexdigest()[:8]
        names[path] = f"{stem}.{fmt}"
    return names


def write_subtitles(journal: Path, paths: Iterable[Path], fmt: str, folder: Path) -> list[Path]:
    """Write one ``fmt`` file per succeeded audio file into ``folder``; return what was written.

    A file is named after its audio file's stem, odd bytes of a name that is not UTF-8 included.
    """
    audio = {journal_path(p): Path(p) for p in paths}
    records = latest_records(journal, audio.values())
    folder.mkdir(parents=True, exist_ok=True)
    names = subtitle_names(sorted(str(audio[key]) for key in records), fmt)
    written = []
    for key, record in sorted(records.items()):
        target = folder / names[str(audio[key])]
        replace_file(target, render(record_cues(record), fmt).encode("utf-8"))
        written.append(target)
    return written
