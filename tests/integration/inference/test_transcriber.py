"""The real models on real speech: accuracy, silence gating, and batched == sequential results.

The batched path runs with the full 30 s context here, so that it can be compared with
faster-whisper's sequential path (always 30 s); the fitted context has its own tests. These need no
broker or Redis, so the package-wide ``local_stack`` fixture is replaced here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import jiwer
import numpy as np
import numpy.typing as npt
import pytest
from faster_whisper import decode_audio

from stream_app.config import Settings
from stream_app.inference.context import FULL_CONTEXT
from stream_app.inference.models import resolve_model
from stream_app.inference.registry import ModelKey, transcriber_registry
from stream_app.inference.transcriber import WhisperTranscriber
from stream_app.inference.types import WindowJob, WindowTranscript

ESPEAK_TEXT = "The quick brown fox jumps over the lazy dog. Streaming speech recognition needs careful window merging."


@pytest.fixture(scope="session")
def local_stack() -> None:
    """No Kafka or Redis needed for these tests."""
    return None


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text.lower())).strip()


def _wer(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(_normalise(reference), _normalise(hypothesis)))


@pytest.fixture(scope="module")
def jfk(jfk_path: Path) -> npt.NDArray[np.float32]:
    return decode_audio(str(jfk_path), sampling_rate=16000)


@pytest.fixture(scope="module")
def espeak_clip(tmp_path_factory: pytest.TempPathFactory) -> npt.NDArray[np.float32]:
    assert shutil.which("espeak-ng"), "espeak-ng is required (apt-get install espeak-ng)"
    wav = tmp_path_factory.mktemp("speech") / "espeak.wav"
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav), ESPEAK_TEXT], check=True)
    return decode_audio(str(wav), sampling_rate=16000)


@pytest.fixture(scope="module", params=["tiny.en", "base"])
def transcriber(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WhisperTranscriber]:
    name = request.param
    path = resolve_model(name, tmp_path_factory.mktemp("models"))
    model = WhisperTranscriber(path, model_name=name, precision="int8", cpu_threads=2, context=FULL_CONTEXT)
    yield model
    model.close()


def test_jfk_is_transcribed_accurately(
    transcriber: WhisperTranscriber, jfk: npt.NDArray[np.float32], jfk_reference: str
) -> None:
    result = transcriber.transcribe_window(WindowJob("s1", 0, 0.0, jfk))
    assert _wer(jfk_reference, result.text) <= 0.1, result.text
    assert not result.skipped_silence
    assert result.model == transcriber.model_name and result.precision == "int8"
    assert result.avg_logprob < 0 and 0 <= result.no_speech_prob < 0.6 and result.compression_ratio > 0


def test_words_carry_stream_time(transcriber: WhisperTranscriber, jfk: npt.NDArray[np.float32]) -> None:
    at_zero = transcriber.transcribe_window(WindowJob("s1", 0, 0.0, jfk))
    later = transcriber.transcribe_window(WindowJob("s1", 7, 120.0, jfk))
    assert len(at_zero.words) >= 20
    starts = [w.start for w in at_zero.words]
    assert starts == sorted(starts) and starts[0] >= 0.0 and at_zero.words[-1].end <= 11.5
    assert [w.text for w in later.words] == [w.text for w in at_zero.words]
    assert [w.start for w in later.words] == pytest.approx([s + 120.0 for s in starts], abs=1e-6)
    assert all(0.0 <= w.probability <= 1.0 for w in at_zero.words)


def test_silence_is_skipped_without_decoding(transcriber: WhisperTranscriber) -> None:
    result = transcriber.transcribe_window(WindowJob("s1", 0, 0.0, np.zeros(5 * 16000, np.float32)))
    assert result.skipped_silence and result.words == () and result.text == ""
    assert result.extra == {}  # the decoder summary is absent: it never ran


def _same(single: WindowTranscript, batched: WindowTranscript) -> None:
    assert batched.text == single.text
    assert batched.skipped_silence == single.skipped_silence
    assert [w.text for w in batched.words] == [w.text for w in single.words]
    assert [w.start for w in batched.words] == pytest.approx([w.start for w in single.words], abs=0.05)
    assert [w.end for w in batched.words] == pytest.approx([w.end for w in single.words], abs=0.05)
    assert batched.avg_logprob == pytest.approx(single.avg_logprob, abs=0.02)


def test_batched_windows_match_single_windows(
    transcriber: WhisperTranscriber,
    jfk: npt.NDArray[np.float32],
    espeak_clip: npt.NDArray[np.float32],
    jfk_reference: str,
) -> None:
    jobs = [
        WindowJob("jfk", 0, 10.0, jfk),
        WindowJob("espeak", 0, 0.0, espeak_clip),
        WindowJob("quiet", 3, 15.0, np.zeros(5 * 16000, np.float32)),
        WindowJob("jfk-cut", 1, 3.0, jfk[3 * 16000 : 8 * 16000]),
    ]
    batched = transcriber.transcribe_windows(jobs)
    assert len(batched) == len(jobs)
    assert all(r.extra["batch_size"] >= 1.0 for r in batched if not r.skipped_silence)  # grouped by length
    singles = [transcriber.transcribe_window(job) for job in jobs]
    for single, result in zip(singles, batched, strict=True):
        _same(single, result)
    assert _wer(jfk_reference, batched[0].text) <= 0.1
    assert _wer(ESPEAK_TEXT, batched[1].text) <= 0.35  # synthetic voice: a sanity bound, not an accuracy goal
    assert batched[2].skipped_silence


def test_batch_result_does_not_depend_on_its_neighbours(
    transcriber: WhisperTranscriber, jfk: npt.NDArray[np.float32], espeak_clip: npt.NDArray[np.float32]
) -> None:
    job = WindowJob("espeak", 0, 0.0, espeak_clip)
    alone_first = transcriber.transcribe_windows([job, WindowJob("jfk", 0, 0.0, jfk)])[0]
    after_jfk = transcriber.transcribe_windows([WindowJob("jfk", 0, 0.0, jfk), job])[1]
    assert alone_first.words == after_jfk.words


def test_registry_loads_real_models_within_budget(settings: Settings, tmp_path: Path) -> None:
    import dataclasses

    optimization = dataclasses.replace(settings.optimization, model_cache_dir=str(tmp_path), memory_budget=150 * 2**20)
    registry = transcriber_registry(dataclasses.replace(settings, optimization=optimization))
    tiny_int8, tiny_fp32 = ModelKey("tiny.en", "int8"), ModelKey("tiny.en", "float32")
    with registry.acquire(tiny_int8) as model:
        assert model.precision == "int8"
        registry.load(tiny_fp32)  # 60 + 120 MB estimated: over budget, but int8 is busy
        assert {r.key for r in registry.snapshot()} == {tiny_int8, tiny_fp32}
    registry.load(ModelKey("tiny.en", "int8_float32"))  # now the idle ones go, least recently used first
    assert registry.estimated_bytes() <= 150 * 2**20
    assert [r.key for r in registry.snapshot()][-1] == ModelKey("tiny.en", "int8_float32")


@pytest.fixture(scope="module")
def fresh_transcriber(
    transcriber: WhisperTranscriber, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WhisperTranscriber]:
    """The same model as ``transcriber`` with buffer reuse off: features allocated afresh per window."""
    path = resolve_model(transcriber.model_name, tmp_path_factory.mktemp("models-fresh"))
    model = WhisperTranscriber(
        path,
        model_name=transcriber.model_name,
        precision="int8",
        cpu_threads=2,
        reuse_buffers=False,
        context=FULL_CONTEXT,
    )
    yield model
    model.close()


def _speech_jobs(jfk: npt.NDArray[np.float32], espeak_clip: npt.NDArray[np.float32]) -> list[WindowJob]:
    return [
        WindowJob("jfk", 0, 10.0, jfk),
        WindowJob("espeak", 0, 0.0, espeak_clip),
        WindowJob("jfk-cut", 1, 3.0, jfk[3 * 16000 : 8 * 16000]),
    ]


def _figures(result: WindowTranscript) -> tuple[object, ...]:
    return (result.text, result.words, result.avg_logprob, result.no_speech_prob, result.extra)


def test_reused_buffers_give_the_same_results_as_fresh_ones(
    transcriber: WhisperTranscriber,
    fresh_transcriber: WhisperTranscriber,
    jfk: npt.NDArray[np.float32],
    espeak_clip: npt.NDArray[np.float32],
) -> None:
    assert transcriber.reuses_buffers and not fresh_transcriber.reuses_buffers
    jobs = _speech_jobs(jfk, espeak_clip)
    fresh = fresh_transcriber.transcribe_windows(jobs)
    for _ in range(2):  # the second pass runs on buffers the first one left behind
        reused = transcriber.transcribe_windows(jobs)
        assert [_figures(r) for r in reused] == [_figures(r) for r in fresh]
        for single, result in zip([transcriber.transcribe_window(j) for j in jobs], reused, strict=True):
            _same(single, result)
    smaller = transcriber.transcribe_windows(jobs[1:])  # a smaller batch on the grown buffer
    assert [r.words for r in smaller] == [r.words for r in fresh[1:]]


def test_threads_batching_at_once_keep_their_own_buffers(
    transcriber: WhisperTranscriber, jfk: npt.NDArray[np.float32], espeak_clip: npt.NDArray[np.float32]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    jobs = _speech_jobs(jfk, espeak_clip)
    expected = [r.words for r in transcriber.transcribe_windows(jobs)]
    orders = [jobs, jobs[::-1], jobs, jobs[::-1]]
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(transcriber.transcribe_windows, orders))
    assert [r.words for r in outcomes[0]] == expected and [r.words for r in outcomes[2]] == expected
    assert [r.words for r in outcomes[1]] == expected[::-1] and [r.words for r in outcomes[3]] == expected[::-1]
