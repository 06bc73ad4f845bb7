from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from stream_app.batch.discovery import find_audio_files
from stream_app.batch.results import (
    BatchResult,
    FileResult,
    FileStamp,
    Journal,
    completed_files,
    journal_path,
    summary_path,
    write_summary,
)


def test_journal_round_trip_marks_only_successes_done(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    journal = Journal(out)
    journal.append(FileResult("/a.wav", "ok", size=10, duration=1.0, text="a", mtime_ns=123))
    journal.append(FileResult("/b.wav", "failed", size=5, error="corrupt", mtime_ns=1))
    journal.append(FileResult("/c.wav", "ok", size=7, mtime_ns=2))
    journal.append(FileResult("/c.wav", "failed", size=7, error="later failure", mtime_ns=2))
    journal.close()
    with out.open("ab") as handle:
        handle.write(b'{"path": "/torn.wav", "sta')  # a run killed mid-write
    assert completed_files(out) == {"/a.wav": FileStamp(10, 123)}


def test_a_torn_last_line_does_not_swallow_the_next_runs_first_record(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    out.write_bytes(FileResult("/a.wav", "ok", size=1, mtime_ns=1).to_json() + b'\n{"path": "/torn.wav", "sta')
    journal = Journal(out)  # the next run
    journal.append(FileResult("/b.wav", "ok", size=2, mtime_ns=2))
    journal.close()
    assert completed_files(out) == {"/a.wav": FileStamp(1, 1), "/b.wav": FileStamp(2, 2)}
    assert out.read_bytes().endswith(b"\n")


def test_a_record_without_modification_time_is_not_taken_as_done(tmp_path: Path) -> None:
    # journals written before mtime_ns was recorded: the file may have changed at the same size
    out = tmp_path / "r.jsonl"
    out.write_bytes(
        b'{"path": "/old.wav", "status": "ok", "size": 10}\n'
        b'{"path": "/new.wav", "status": "ok", "size": 10, "mtime_ns": 5}\n'
        b'{"path": "/new.wav", "status": "ok", "size": 10}\n'  # the latest record counts
        b'{"path": "/kept.wav", "status": "ok", "size": 3, "mtime_ns": 7}\n'
    )
    assert completed_files(out) == {"/kept.wav": FileStamp(3, 7)}


def test_a_record_that_cannot_be_serialised_is_written_as_the_files_failure(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    journal = Journal(out)
    written = journal.append(FileResult("/a.wav", "ok", size=4, text="bad \udce9 text", mtime_ns=9))
    journal.append(FileResult("/b.wav", "ok", size=5, mtime_ns=9))
    journal.close()
    assert written.status == "failed" and "could not be written" in (written.error or "")
    first, second = map(orjson.loads, out.read_bytes().splitlines())
    assert (first["path"], first["status"], first["size"]) == ("/a.wav", "failed", 4)
    assert "could not be written" in first["error"]
    assert (second["path"], second["status"]) == ("/b.wav", "ok")


def test_a_name_that_is_not_utf8_is_journaled_escaped_and_found_again(tmp_path: Path) -> None:
    name = os.fsdecode(b"/audio/m\xe9lange.wav")  # a str with a surrogate, as os.listdir gives it
    assert journal_path(name) == "/audio/m\\xe9lange.wav"
    assert journal_path("/audio/caf\u00e9.wav") == "/audio/caf\u00e9.wav"  # valid UTF-8 is kept as it is
    out = tmp_path / "r.jsonl"
    journal = Journal(out)
    journal.append(FileResult(name, "ok", size=4, mtime_ns=9))
    journal.append(FileResult(name + "2", "failed", size=1, error=f"cannot read {name}2"))
    journal.close()
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [r["path"] for r in records] == ["/audio/m\\xe9lange.wav", "/audio/m\\xe9lange.wav2"]
    assert records[1]["error"] == "cannot read /audio/m\\udce9lange.wav2"
    assert completed_files(out) == {journal_path(name): FileStamp(4, 9)}


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


def test_a_summary_goes_into_a_folder_not_made_yet(tmp_path: Path) -> None:
    # a run with nothing to do never opens its journal, so nothing else made the folder
    path = write_summary(tmp_path / "new" / "deeper" / "r.jsonl", BatchResult(total=0))
    assert orjson.loads(path.read_bytes())["total"] == 0


def test_discovery_recurses_filters_and_deduplicates(tmp_path: Path) -> None:
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for name in ["a/x.wav", "a/deep/y.FLAC", "a/notes.txt", "a/.hidden.wav", "z.mp3"]:
        (tmp_path / name).write_bytes(b"")
    explicit = tmp_path / "a" / "notes.txt"
    found = find_audio_files([tmp_path / "a", tmp_path / "z.mp3", tmp_path / "a" / "x.wav", explicit])
    assert found == [tmp_path / "a/deep/y.FLAC", tmp_path / "a/x.wav", tmp_path / "z.mp3", explicit]


def test_a_missing_path_named_among_others_is_kept_to_fail_alone(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "loop.wav").symlink_to(tmp_path / "loop.wav")
    found = find_audio_files([tmp_path / "a.wav", tmp_path / "absent.wav", tmp_path / "loop.wav"])
    assert found == [tmp_path / "a.wav", tmp_path / "absent.wav", tmp_path / "loop.wav"]
    (tmp_path / "empty").mkdir()
    assert find_audio_files([tmp_path / "empty", tmp_path / "absent.wav"]) == [tmp_path / "absent.wav"]


def test_nothing_named_exists_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "loop.wav").symlink_to(tmp_path / "loop.wav")
    with pytest.raises(FileNotFoundError, match=r"no such file or folder: .*absent\.wav, .*loop\.wav"):
        find_audio_files([tmp_path / "absent.wav", tmp_path / "loop.wav"])
