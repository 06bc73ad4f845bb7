"""The batch runner end to end with a model double that 'hears' tone levels (the real model runs in integration)."""

from __future__ import annotations

import itertools
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
