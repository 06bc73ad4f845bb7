from __future__ import annotations

from pathlib import Path

import orjson

from stream_app.batch.discovery import find_audio_files
from stream_app.batch.results import BatchResult, FileResult, Journal, completed_files, summary_path, write_summary


def test_journal_round_trip_marks_only_successes_done(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    journal = Journal(out)
    journal.append(FileResult("/a.wav", "ok", size=10, duration=1.0, text="a"))
    journal.append(FileResult("/b.wav", "failed", size=5, error="corrupt"))
    journal.append(FileResult("/c.wav", "ok", size=7))
    journal.append(FileResult("/c.wav", "failed", size=7, error="later failure"))
    journal.close()
    with out.open("ab") as handle:
        handle.write(b'{"path": "/torn.wav", "sta')  # a run killed mid-write
    assert completed_files(out) == {"/a.wav": 10}


def test_missing_journal_means_nothing_done(tmp_path: Path) -> None:
    assert completed_files(tmp_path / "none.jsonl") == {}
    assert completed_files(None) == {}


def test_summary_counts_and_speed(tmp_path: Path) -> None:
    result = BatchResult(total=4, skipped=1, wall_seconds=2.0)
    result.record(FileResult("/a", "ok", duration=6.0))
    result.record(FileResult("/b", "ok", duration=4.0))
    result.record(FileResult("/c", "failed", error="x"))
    assert (result.succeeded, result.failed, result.audio_seconds) == (2, 1, 10.0)
    assert result.rtf == 0.2 and result.rtx == 5.0
    path = write_summary(tmp_path / "r.jsonl", result)
    assert path == summary_path(tmp_path / "r.jsonl") == tmp_path / "r.jsonl.summary.json"
    data = orjson.loads(path.read_bytes())
    assert data["total"] == 4 and data["skipped"] == 1 and data["failed"] == 1 and data["rtx"] == 5.0


def test_discovery_recurses_filters_and_deduplicates(tmp_path: Path) -> None:
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for name in ["a/x.wav", "a/deep/y.FLAC", "a/notes.txt", "a/.hidden.wav", "z.mp3"]:
        (tmp_path / name).write_bytes(b"")
    explicit = tmp_path / "a" / "notes.txt"
    found = find_audio_files([tmp_path / "a", tmp_path / "z.mp3", tmp_path / "a" / "x.wav", explicit])
    assert found == [tmp_path / "a/deep/y.FLAC", tmp_path / "a/x.wav", tmp_path / "z.mp3", explicit]
