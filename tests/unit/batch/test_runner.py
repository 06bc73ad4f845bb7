"""The batch runner end to end with a model double that 'hears' tone levels (the real model runs in integration)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson
import pytest
import soundfile

from stream_app.audio.files import decode_audio_file
from stream_app.batch import PackingPolicy, transcribe_batch
from stream_app.batch.speech_cuts import FRAME, SpeechCutPolicy, speech_spans
from stream_app.config.loader import load_settings
from stream_app.inference.types import WindowJob, WindowTranscript, Word
from stream_app.inference.vad import SpeechDetector

RATE = 16000


class ToneEars:
    """Emits one word per non-silent run, named after its level ('L30' for amplitude 0.30); raises on 'L99'."""

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def transcribe_windows(self, jobs: Sequence[WindowJob]) -> list[WindowTranscript]:
        self.batch_sizes.append(len(jobs))
        return [self._one(job) for job in jobs]

    def _one(self, job: WindowJob) -> WindowTranscript:
        loud = np.abs(job.samples) > 1e-3
        edges = np.flatnonzero(np.diff(np.concatenate([[0], loud.astype(np.int8), [0]])))
        words = []
        for start, end in zip(edges[::2], edges[1::2], strict=True):
            level = round(float(np.abs(job.samples[start:end]).max()) * 100)
            if level == 99:
                raise RuntimeError("poisoned audio")
            words.append(Word(job.start + start / RATE, job.start + end / RATE, f"L{level}", 0.9))
        text = " ".join(w.text for w in words)
        return WindowTranscript(tuple(words), text, -0.1, 0.0, 1.0, "tone-ears", "int8")


def write_tone(path: Path, seconds: float, level: int) -> None:
    soundfile.write(path, np.full(int(seconds * RATE), level / 100, dtype=np.float32), RATE, subtype="FLOAT")


TONES = PackingPolicy(follow_speech=False)  # the double hears tones, which the speech detector rightly ignores
PACKED_TONES = PackingPolicy(pack=True, follow_speech=False)


@pytest.fixture
def settings():  # type: ignore[no-untyped-def]
    return load_settings(None, env={"STREAM_APP_PARALLEL__MAX_WAIT": "50ms"})


def test_files_come_back_with_their_own_words(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    audio = tmp_path / "audio"
    (audio / "nested").mkdir(parents=True)
    for i in range(40):
        write_tone(audio / ("nested" if i % 2 else ".") / f"f{i:02d}.wav", 0.5 + (i % 4) * 0.5, 10 + i)
    (audio / "corrupt.wav").write_bytes(b"RIFF not really")
    (audio / "empty.wav").write_bytes(b"")
    out = tmp_path / "out" / "results.jsonl"
    model = ToneEars()

    packed = PACKED_TONES
    result = transcribe_batch([audio], settings=settings, output=out, transcriber=model, workers=2, packing=packed)

    assert (result.total, result.succeeded, result.failed, result.skipped) == (42, 40, 2, 0)
    assert result.windows < 10  # 40 short files packed into a handful of windows, when asked
    records = {Path(r["path"]).name: r for r in map(orjson.loads, out.read_bytes().splitlines())}
    assert len(records) == 42
    for i in range(40):
        record = records[f"f{i:02d}.wav"]
        assert record["status"] == "ok" and record["text"] == f"L{10 + i}"
        word = record["segments"][0]["words"][0]
        assert word["word"] == f"L{10 + i}" and "text" not in word  # named as on the transcripts topic
        assert word["start"] == pytest.approx(0.0, abs=0.01)
        assert word["end"] == pytest.approx(record["duration"], abs=0.01)
    assert records["corrupt.wav"]["status"] == "failed" and records["corrupt.wav"]["error"]
    assert records["empty.wav"]["status"] == "failed"
    summary = orjson.loads((tmp_path / "out" / "results.jsonl.summary.json").read_bytes())
    assert summary["succeeded"] == 40 and summary["failed"] == 2
    assert summary["audio_seconds"] == pytest.approx(sum(0.5 + (i % 4) * 0.5 for i in range(40)), abs=0.01)


def test_long_file_is_split_and_rejoined_in_file_time(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    samples = np.zeros(70 * RATE, dtype=np.float32)
    for n, at in enumerate([5, 33, 65]):  # one 'word' in each of three windows
        samples[at * RATE : (at + 1) * RATE] = (20 + n) / 100
    soundfile.write(tmp_path / "long.wav", samples, RATE, subtype="FLOAT")
    result = transcribe_batch(
        [tmp_path / "long.wav"], settings=settings, output=None, transcriber=ToneEars(), packing=TONES
    )
    (record,) = result.results
    assert record.text == "L20 L21 L22"
    assert [s.start for s in record.segments] == pytest.approx([0.0, 30.0, 60.0], abs=3.0)
    assert [w.start for s in record.segments for w in s.words] == pytest.approx([5.0, 33.0, 65.0], abs=0.01)


def test_a_poisoned_file_fails_alone_even_when_packed(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    for i, level in enumerate([11, 12, 99, 13]):
        write_tone(tmp_path / f"f{i}.wav", 1.0, level)
    packed = PACKED_TONES
    result = transcribe_batch([tmp_path], settings=settings, output=None, transcriber=ToneEars(), packing=packed)
    by_name = {Path(r.path).name: r for r in result.results}
    assert by_name["f2.wav"].status == "failed" and "poisoned audio" in (by_name["f2.wav"].error or "")
    assert [by_name[f"f{i}.wav"].text for i in (0, 1, 3)] == ["L11", "L12", "L13"]


def test_rerun_skips_what_succeeded_and_retries_what_failed(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    for i in range(6):
        write_tone(tmp_path / f"f{i}.wav", 1.0, 30 + i)
    (tmp_path / "bad.wav").write_bytes(b"junk")
    out = tmp_path / "r.jsonl"
    first = transcribe_batch(
        sorted(tmp_path.glob("f[0-2].wav")), settings=settings, output=out, transcriber=ToneEars(), packing=TONES
    )
    assert (first.total, first.succeeded) == (3, 3)
    second = transcribe_batch([tmp_path], settings=settings, output=out, transcriber=ToneEars(), packing=TONES)
    assert (second.total, second.skipped, second.succeeded, second.failed) == (7, 3, 3, 1)
    assert sorted(Path(r.path).name for r in second.results) == ["bad.wav", "f3.wav", "f4.wav", "f5.wav"]
    third = transcribe_batch([tmp_path], settings=settings, output=out, transcriber=ToneEars(), packing=TONES)
    assert (third.skipped, third.failed, third.succeeded) == (6, 1, 0)


def test_by_default_each_file_has_its_own_window(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    # a file's text must depend on its own audio only: packed neighbours changed real transcripts
    for i in range(5):
        write_tone(tmp_path / f"f{i}.wav", 1.0, 40 + i)
    result = transcribe_batch([tmp_path], settings=settings, output=None, transcriber=ToneEars(), packing=TONES)
    assert result.windows == 5 and result.succeeded == 5


class WindowLog:
    """Answers every window with one word spanning it, and keeps the windows' file times."""

    def __init__(self) -> None:
        self.windows: list[tuple[float, float]] = []

    def transcribe_windows(self, jobs: Sequence[WindowJob]) -> list[WindowTranscript]:
        out = []
        for job in jobs:
            end = job.start + len(job.samples) / RATE
            self.windows.append((job.start, end))
            word = Word(job.start, end, f"w{len(self.windows)}", 0.9)
            out.append(WindowTranscript((word,), word.text, -0.1, 0.0, 1.0, "window-log", "int8"))
        return out


def test_by_default_windows_follow_the_speech_and_skip_long_silences(
    tmp_path: Path,
    settings,
    jfk_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    speech = decode_audio_file(jfk_path)  # 11 s of real speech
    silence = np.zeros(8 * RATE, dtype=np.float32)
    samples = np.concatenate([silence, speech, silence, speech, speech, silence])
    soundfile.write(tmp_path / "talk.wav", samples, RATE, subtype="FLOAT")
    soundfile.write(tmp_path / "quiet.wav", silence, RATE, subtype="FLOAT")
    model = WindowLog()
    result = transcribe_batch([tmp_path], settings=settings, output=None, transcriber=model)
    by_name = {Path(r.path).name: r for r in result.results}
    assert by_name["quiet.wav"].status == "ok" and by_name["quiet.wav"].text == ""  # no speech: no decode
    talk = by_name["talk.wav"]
    assert talk.status == "ok"
    pieces = [(w.start, w.end) for s in talk.segments for w in s.words]  # one word per window, in file time
    assert len(pieces) == result.windows >= 3
    assert all(end - start <= 20.0 + 0.7 for start, end in pieces)  # at most max_seconds plus lead and tail
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(pieces))  # in order, no overlap
    assert pieces[0][0] == pytest.approx(8.0, abs=1.0)  # the leading silence is not decoded
    decoded = sum(end - start for start, end in pieces)
    assert decoded < len(samples) / RATE - 20.0  # nor the long silences between and after
    probs = SpeechDetector().whole(samples)
    for start, end in speech_spans(probs, SpeechCutPolicy()):  # every frame the detector calls speech is decoded
        for frame in range(start, end):
            at = (frame + 0.5) * FRAME / RATE
            assert any(a - 0.01 <= at <= b + 0.01 for a, b in pieces), f"speech at {at:.2f} s in no window"


def test_a_name_that_is_not_utf8_is_transcribed_journaled_and_skipped_on_rerun(
    tmp_path: Path,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    odd = Path(os.fsdecode(os.fsencode(tmp_path) + b"/m\xe9lange.wav"))  # libsndfile refuses such a name
    with odd.open("wb") as handle:
        soundfile.write(handle, np.full(RATE, 0.3, dtype=np.float32), RATE, format="WAV", subtype="FLOAT")
    write_tone(tmp_path / "plain.wav", 1.0, 31)
    out = tmp_path / "r.jsonl"
    first = transcribe_batch([tmp_path], settings=settings, output=out, transcriber=ToneEars(), packing=TONES)
    assert (first.succeeded, first.failed) == (2, 0)
    records = {r["path"]: r for r in map(orjson.loads, out.read_bytes().splitlines())}
    assert records[f"{tmp_path}/m\\xe9lange.wav"]["text"] == "L30"
    second = transcribe_batch([tmp_path], settings=settings, output=out, transcriber=ToneEars(), packing=TONES)
    assert (second.skipped, second.succeeded, second.failed) == (2, 0, 0)


class Garbled(ToneEars):
    """Hears tones, but spells the word of level 66 with a lone surrogate (a record JSON cannot hold)."""

    def _one(self, job: WindowJob) -> WindowTranscript:
        heard = super()._one(job)
        if heard.text != "L66":
            return heard
        word = Word(heard.words[0].start, heard.words[0].end, "L\udc66", 0.9)
        return WindowTranscript((word,), word.text, -0.1, 0.0, 1.0, "garbled", "int8")


def test_a_record_that_cannot_be_journaled_fails_its_file_and_the_run_goes_on(
    tmp_path: Path,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    for i, level in enumerate([65, 66, 67]):
        write_tone(tmp_path / f"f{i}.wav", 1.0, level)
    out = tmp_path / "r.jsonl"
    result = transcribe_batch([tmp_path], settings=settings, output=out, transcriber=Garbled(), packing=TONES)
    assert (result.succeeded, result.failed) == (2, 1)
    records = {Path(r["path"]).name: r for r in map(orjson.loads, out.read_bytes().splitlines())}
    assert records["f1.wav"]["status"] == "failed" and "could not be written" in records["f1.wav"]["error"]
    assert [records[f"f{i}.wav"]["text"] for i in (0, 2)] == ["L65", "L67"]


def test_a_file_changed_at_the_same_size_is_transcribed_again(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    audio, out = tmp_path / "f.wav", tmp_path / "r.jsonl"
    write_tone(audio, 1.0, 20)
    transcribe_batch([audio], settings=settings, output=out, transcriber=ToneEars(), packing=TONES)
    before = audio.stat()
    write_tone(audio, 1.0, 21)  # new content, same size
    os.utime(audio, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    assert audio.stat().st_size == before.st_size
    again = transcribe_batch([audio], settings=settings, output=out, transcriber=ToneEars(), packing=TONES)
    assert (again.skipped, again.succeeded) == (0, 1) and again.results[0].text == "L21"
    third = transcribe_batch([audio], settings=settings, output=out, transcriber=ToneEars(), packing=TONES)
    assert third.skipped == 1


def test_a_missing_path_named_among_others_is_a_failed_file(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    write_tone(tmp_path / "a.wav", 1.0, 25)
    (tmp_path / "loop.wav").symlink_to(tmp_path / "loop.wav")
    named = [tmp_path / "a.wav", tmp_path / "absent.wav", tmp_path / "loop.wav"]
    out = tmp_path / "r.jsonl"
    result = transcribe_batch(named, settings=settings, output=out, transcriber=ToneEars(), packing=TONES)
    assert (result.total, result.succeeded, result.failed) == (3, 1, 2)
    errors = {Path(r["path"]).name: r["error"] for r in map(orjson.loads, out.read_bytes().splitlines())}
    assert errors["a.wav"] is None and errors["absent.wav"] == "no such file"
    assert "symbolic links" in errors["loop.wav"]
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        transcribe_batch([tmp_path / "absent.wav"], settings=settings, output=out, transcriber=ToneEars())


def test_an_empty_folder_into_a_new_output_folder_writes_its_summary(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "empty").mkdir()
    out = tmp_path / "new" / "r.jsonl"
    result = transcribe_batch([tmp_path / "empty"], settings=settings, output=out, transcriber=ToneEars())
    assert result.total == 0
    assert orjson.loads((tmp_path / "new" / "r.jsonl.summary.json").read_bytes())["total"] == 0


class HalfEars(ToneEars):
    """Hears tones below level 50; louder ones it leaves without words, reported as ``undecoded`` speech."""

    def _one(self, job: WindowJob) -> WindowTranscript:
        heard = super()._one(job)
        kept = tuple(w for w in heard.words if int(w.text[1:]) < 50)
        missed = tuple((w.start, w.end) for w in heard.words if int(w.text[1:]) >= 50)
        text = " ".join(w.text for w in kept)
        return WindowTranscript(kept, text, -0.1, 0.0, 1.0, "half-ears", "int8", undecoded=missed)


def test_speech_left_without_words_is_in_the_files_record_in_file_time(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    write_tone(tmp_path / "f0.wav", 1.0, 20)
    both = np.concatenate([np.full(RATE, 0.2), np.zeros(RATE // 2), np.full(RATE, 0.6)]).astype(np.float32)
    soundfile.write(tmp_path / "f1.wav", both, RATE, subtype="FLOAT")  # its last second is missed
    out = tmp_path / "r.jsonl"
    transcribe_batch([tmp_path], settings=settings, output=out, transcriber=HalfEars(), packing=PACKED_TONES)
    records = {Path(r["path"]).name: r for r in map(orjson.loads, out.read_bytes().splitlines())}
    assert records["f0.wav"]["undecoded"] == []
    f1 = records["f1.wav"]
    assert f1["status"] == "ok" and f1["text"] == "L20"
    assert f1["undecoded"] == [pytest.approx([1.5, 2.5], abs=0.01)]  # 3.5-4.5 s in the window, where f1 starts at 2 s
