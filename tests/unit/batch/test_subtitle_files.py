"""Subtitle files from a batch journal: which record counts, cues that keep to the file, whole files."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import orjson

from stream_app.batch.results import FileResult, FileSegment, Journal
from stream_app.batch.subtitles import latest_records, record_cues, write_subtitles
from stream_app.inference.types import Word


def ok(path: str, *words: tuple[float, float, str], duration: float = 10.0) -> FileResult:
    timed = tuple(Word(a, b, text, 0.9) for a, b, text in words)
    segment = FileSegment(0.0, duration, "".join(w.text for w in timed).strip(), timed)
    return FileResult(path, "ok", size=1, duration=duration, text=segment.text, segments=(segment,), mtime_ns=1)


def journal_of(path: Path, *records: FileResult) -> Path:
    journal = Journal(path)
    for record in records:
        journal.append(record)
    journal.close()
    return path


def test_a_later_failure_drops_the_files_subtitles(tmp_path: Path) -> None:
    journal = journal_of(
        tmp_path / "r.jsonl",
        ok("/a.wav", (0.0, 1.0, " old.")),
        FileResult("/a.wav", "failed", size=1, error="changed and now corrupt"),
        FileResult("/b.wav", "failed", size=1, error="first try"),
        ok("/b.wav", (0.0, 1.0, " new.")),
    )
    latest = latest_records(journal, [Path("/a.wav"), Path("/b.wav")])
    assert list(latest) == ["/b.wav"] and latest["/b.wav"]["text"] == "new."
    written = write_subtitles(journal, [Path("/a.wav"), Path("/b.wav")], "srt", tmp_path / "subs")
    assert [p.name for p in written] == ["b.srt"]


def test_cues_joined_across_segments_neither_overlap_nor_outlast_the_file() -> None:
    # a short last word of a segment is lengthened to 0.3 s: into the next segment, or past the file's end
    first = FileSegment(0.0, 5.0, "Hello. So", (Word(4.0, 4.7, " Hello.", 0.9), Word(4.85, 4.95, " So", 0.9)))
    second = FileSegment(5.0, 8.0, "we end", (Word(5.0, 5.4, " we", 0.9), Word(7.85, 7.95, " end", 0.9)))
    record = FileResult("/a.wav", "ok", duration=8.0, segments=(first, second))
    cues = record_cues(orjson.loads(record.to_json()))
    assert [c.text for c in cues] == ["Hello.", "So", "we", "end"]
    assert all(a.end <= b.start for a, b in itertools.pairwise(cues))
    assert cues[1].end == 5.0 and cues[-1].end == 8.0
    assert all(c.end > c.start for c in cues)


def test_a_subtitle_file_is_replaced_whole_not_rewritten_in_place(tmp_path: Path) -> None:
    journal = journal_of(tmp_path / "r.jsonl", ok("/a.wav", (0.0, 1.0, " new.")))
    subs = tmp_path / "subs"
    subs.mkdir()
    kept = tmp_path / "kept.srt"
    kept.write_text("an older file a reader still holds\n")
    os.link(kept, subs / "a.srt")  # the same file under the name about to be written
    (written,) = write_subtitles(journal, [Path("/a.wav")], "srt", subs)
    assert "new." in written.read_text()
    assert kept.read_text() == "an older file a reader still holds\n"  # the old file was not truncated
    assert sorted(p.name for p in subs.iterdir()) == ["a.srt"]  # no temporary file left


def test_a_name_that_is_not_utf8_gets_its_subtitles_under_its_own_stem(tmp_path: Path) -> None:
    odd = Path(os.fsdecode(b"/audio/m\xe9lange.wav"))
    journal = journal_of(tmp_path / "r.jsonl", ok(str(odd), (0.0, 1.0, " bonjour.")))
    (written,) = write_subtitles(journal, [odd], "vtt", tmp_path)
    assert os.fsencode(written.name) == b"m\xe9lange.vtt"
    assert "bonjour." in written.read_text(encoding="utf-8")
