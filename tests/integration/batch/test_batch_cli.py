"""`stream-app batch` as a user runs it, with the real tiny.en model."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from stream_app.cli.main import main
from stream_app.samples import JFK_FLAC as JFK


def test_cli_writes_journal_and_summary_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    audio = tmp_path / "in"
    audio.mkdir()
    shutil.copyfile(JFK, audio / "jfk.flac")
    (audio / "broken.wav").write_bytes(b"not audio at all")
    out = tmp_path / "results.jsonl"

    status = main(["batch", str(audio), "-o", str(out), "--no-progress", "--json"])

    assert status == 1  # one file failed
    summary = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["total"], summary["succeeded"], summary["failed"], summary["skipped"]) == (2, 1, 1, 0)
    assert summary["audio_seconds"] == pytest.approx(11.0, abs=0.1)
    assert orjson.loads((tmp_path / "results.jsonl.summary.json").read_bytes()) == summary
    records = {Path(r["path"]).name: r for r in map(orjson.loads, out.read_bytes().splitlines())}
    assert "ask not what your country can do for you" in records["jfk.flac"]["text"].lower()
    assert records["broken.wav"]["status"] == "failed"

    (audio / "broken.wav").unlink()
    assert main(["batch", str(audio), "-o", str(out), "--no-progress", "--json"]) == 0
    again = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (again["total"], again["skipped"], again["succeeded"]) == (1, 1, 0)


def test_cli_rejects_a_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["batch", str(tmp_path / "nope"), "-o", str(tmp_path / "r.jsonl"), "--no-progress"]) == 2
    assert "no such file or folder" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_cli_writes_subtitles_from_the_words(tmp_path: Path, fmt: str) -> None:
    audio = tmp_path / "in"
    audio.mkdir()
    shutil.copyfile(JFK, audio / "jfk.flac")
    out = tmp_path / "out" / "results.jsonl"
    args = ["batch", str(audio), "-o", str(out), "--no-progress", "--format", fmt]
    assert main([*args, "--subtitles-dir", str(tmp_path / "subs")]) == 0
    text = (tmp_path / "subs" / f"jfk.{fmt}").read_text()
    first = text.removeprefix("WEBVTT\n\n").split("\n\n")[0].splitlines()
    arrow = first[1] if fmt == "srt" else first[0]
    assert arrow.startswith("00:00:00") and " --> 00:00:0" in arrow  # the first words, within seconds
    assert (fmt == "srt") == (first[0] == "1")
    assert "country" in text and "ask not" in text.lower()
    (line,) = out.read_bytes().splitlines()
    assert all("word" in w and "text" not in w for s in orjson.loads(line)["segments"] for w in s["words"])
    # a second run skips the file as done, and still writes its subtitles (from the journal) where asked
    assert main([*args]) == 0
    assert (out.parent / f"jfk.{fmt}").read_text() == text
