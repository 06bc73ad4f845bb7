"""Fitted encoder context, its guards and prompts, on the real tiny.en model and real speech."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from faster_whisper import decode_audio
from prometheus_client import REGISTRY

from stream_app.inference.context import FULL_CONTEXT, EncoderContext
from stream_app.inference.models import resolve_model
from stream_app.inference.transcriber import WhisperTranscriber
from stream_app.inference.types import DecodeKind, Priority, WindowJob, WindowTranscript

FITTED = EncoderContext("fitted", margin=1.0, bucket=1.0)
NO_MARGIN = EncoderContext("fitted", margin=0.0, bucket=0.01)  # the audio alone: tiny.en loops on some windows


@pytest.fixture(scope="session")
def local_stack() -> None:
    """No Kafka or Redis needed for these tests."""
    return None


@pytest.fixture(scope="module")
def jfk(jfk_path: Path) -> npt.NDArray[np.float32]:
    return decode_audio(str(jfk_path), sampling_rate=16000)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WhisperTranscriber]:
    path = resolve_model("tiny.en", tmp_path_factory.mktemp("models"))
    model = WhisperTranscriber(path, model_name="tiny.en", precision="int8", cpu_threads=2, context=FITTED)
    yield model
    model.close()


def _fallbacks(reason: str) -> float:
    return REGISTRY.get_sample_value("stream_app_context_fallbacks_total", {"reason": reason}) or 0.0


def _words(result: WindowTranscript) -> list[str]:
    return [w.text for w in result.words]


def test_fitted_context_transcribes_jfk_like_the_full_context(
    tiny: WhisperTranscriber, jfk: npt.NDArray[np.float32], jfk_reference: str
) -> None:
    job = WindowJob("jfk", 0, 5.0, jfk)
    fitted = tiny.transcribe_windows([job])[0]
    full = tiny.transcribe_windows([job], FULL_CONTEXT)[0]
    assert fitted.extra["encoder_frames"] == 1200.0 and full.extra["encoder_frames"] == 3000.0
    assert fitted.context_fallback is None and full.context_fallback is None
    assert _words(fitted) == _words(full)
    assert [w.start for w in fitted.words] == pytest.approx([w.start for w in full.words], abs=0.1)
    assert fitted.words[0].start >= 5.0 and fitted.words[-1].end <= 5.0 + 11.1  # stream time, inside the audio


def test_a_windows_fitted_result_does_not_depend_on_its_batch(
    tiny: WhisperTranscriber, jfk: npt.NDArray[np.float32]
) -> None:
    cut = WindowJob("cut", 0, 3.0, jfk[3 * 16000 : 8 * 16000])
    same_bucket = WindowJob("other", 0, 0.0, jfk[: 5 * 16000])
    whole = WindowJob("jfk", 0, 0.0, jfk)
    alone = tiny.transcribe_windows([cut])[0]
    with_same = tiny.transcribe_windows([same_bucket, cut])[1]
    with_others = tiny.transcribe_windows([whole, cut, same_bucket])[1]
    assert with_same.extra["batch_size"] == 2.0 and alone.extra["batch_size"] == 1.0  # one call for both
    for result in (with_same, with_others):
        assert result.words == alone.words and result.text == alone.text
        assert result.extra["encoder_frames"] == alone.extra["encoder_frames"] == 600.0


def test_word_times_do_not_depend_on_how_many_tokens_the_batchs_other_windows_decoded(
    tiny: WhisperTranscriber, jfk: npt.NDArray[np.float32]
) -> None:
    # windows of one encoder length whose decodes differ in length: CTranslate2 aligns a batch with its
    # token sequences padded to the longest, which moved a window's word times (a replay re-cut finals)
    seconds = 16000
    jobs = [
        WindowJob(f"s{i}", 0, float(start), jfk[start * seconds : (start + 5) * seconds])
        for i, start in enumerate((0, 1, 3, 5))
    ]
    alone = [tiny.transcribe_windows([job])[0] for job in jobs]
    assert len({len(result.words) for result in alone}) > 1  # the decodes differ in length
    for size in (2, 4):
        batched = tiny.transcribe_windows(jobs[:size])
        assert [result.extra["batch_size"] for result in batched] == [float(size)] * size
        for single, result in zip(alone[:size], batched, strict=True):
            assert result.words == single.words and result.avg_logprob == single.avg_logprob


def test_a_looping_fitted_decode_is_re_run_with_the_full_context(
    tiny: WhisperTranscriber, jfk: npt.NDArray[np.float32]
) -> None:
    job = WindowJob("cut", 0, 3.0, jfk[3 * 16000 : 8 * 16000])
    greedy = tiny.decoder.decode(  # what the fitted pass sees: the audio alone makes tiny.en repeat itself
        [job.samples],
        NO_MARGIN.frames_for(len(job.samples) // 160),
        [tiny.decoder.prompt(tiny.decoder.tokenizer("en"), "")],
        "en",
    ).greedy[0]
    assert greedy.text.lower().count("ask not what your country can do for you") >= 3, greedy.text
    before = _fallbacks("repetition")
    result = tiny.transcribe_windows([job], NO_MARGIN)[0]
    full = tiny.transcribe_windows([job], FULL_CONTEXT)[0]
    assert result.context_fallback == "repetition"
    assert _fallbacks("repetition") == before + 1
    assert result.extra["encoder_frames"] == 3000.0  # its words come from the full-context decode
    assert result.text == full.text and result.words == full.words
    assert result.text.lower().count("ask not") == 1


@pytest.fixture(scope="module")
def said_twice(tmp_path_factory: pytest.TempPathFactory) -> npt.NDArray[np.float32]:
    """A sentence, then another read twice in a row (two voices, two speeds): speech, not a loop."""
    assert shutil.which("espeak-ng"), "espeak-ng is required (apt-get install espeak-ng)"
    folder = tmp_path_factory.mktemp("twice")
    parts = []
    for name, voice, speed, text in (
        ("a", "en", "160", "The doctor asked me to come back next week."),
        ("b", "en-us", "150", REPEATED),
        ("c", "en", "170", REPEATED),
    ):
        subprocess.run(["espeak-ng", "-v", voice, "-s", speed, "-w", str(folder / f"{name}.wav"), text], check=True)
        parts += [decode_audio(str(folder / f"{name}.wav"), sampling_rate=16000), np.zeros(8000, np.float32)]
    return np.concatenate(parts)


REPEATED = "A strong wind blew across the field and bent the tall grass."


@pytest.mark.parametrize("kind", [DecodeKind.TICK, DecodeKind.PREVIEW])
def test_a_sentence_said_twice_is_kept_at_the_fitted_context(
    tiny: WhisperTranscriber, said_twice: npt.NDArray[np.float32], kind: DecodeKind
) -> None:
    """Ticks and previews were rejected as loops: a stream's finals waited for its window's cut."""
    priority = Priority.INTERIM if kind is DecodeKind.PREVIEW else Priority.FINAL
    job = WindowJob("twice", 0, 0.0, said_twice, priority=priority, kind=kind)
    before = REGISTRY.get_sample_value("stream_app_repeats_heard_total") or 0.0
    result = tiny.transcribe_windows([job])[0]
    assert result.context_fallback is None and not result.rejected_preview
    assert result.extra["encoder_frames"] < 3000.0  # no full-context pass
    assert result.text.lower().count("strong wind blew across the field") == 2, result.text
    assert REGISTRY.get_sample_value("stream_app_repeats_heard_total") == before + 1
    copies = [w for w in result.words if w.text.lower().startswith("strong")]
    assert copies[1].start - copies[0].start > 3.0  # each copy on its own speech


def test_a_cut_that_repeats_a_sentence_is_still_re_run_with_the_full_context(
    tiny: WhisperTranscriber, said_twice: npt.NDArray[np.float32]
) -> None:
    """A cut's words are final at once, with no second decode to agree: its repeats get the 30 s pass."""
    before = REGISTRY.get_sample_value("stream_app_repeats_heard_total") or 0.0
    result = tiny.transcribe_windows([WindowJob("twice", 0, 0.0, said_twice, kind=DecodeKind.CUT)])[0]
    assert result.context_fallback == "repetition" and result.extra["encoder_frames"] == 3000.0
    assert result.text.lower().count("strong wind blew across the field") == 2, result.text
    assert REGISTRY.get_sample_value("stream_app_repeats_heard_total") == before


def test_a_looping_preview_is_rejected_not_re_run(tiny: WhisperTranscriber, jfk: npt.NDArray[np.float32]) -> None:
    """A preview is best effort: its loop is dropped (no words) instead of paying for a 30 s pass."""
    preview = WindowJob("cut", 0, 3.0, jfk[3 * 16000 : 8 * 16000], priority=Priority.INTERIM, kind=DecodeKind.PREVIEW)
    before = _fallbacks("repetition")
    result = tiny.transcribe_windows([preview], NO_MARGIN)[0]
    assert result.rejected_preview and result.context_fallback == "repetition"
    assert result.words == () and result.extra == {}
    assert _fallbacks("repetition") == before  # nothing was re-run


def test_silence_never_reaches_the_decoder(tiny: WhisperTranscriber) -> None:
    quiet = tiny.transcribe_windows([WindowJob("q", 0, 0.0, np.zeros(4 * 16000, np.float32))])[0]
    assert quiet.skipped_silence and quiet.context_fallback is None and quiet.extra == {}


def test_a_prompt_is_decoded_as_previous_text_on_both_paths(
    tiny: WhisperTranscriber, jfk: npt.NDArray[np.float32]
) -> None:
    prompt = "We choose to go to the Moon. We choose to go to the Moon in this decade."
    plain = WindowJob("jfk", 1, 0.0, jfk)
    prompted = WindowJob("jfk", 1, 0.0, jfk, prompt=prompt)
    other = WindowJob("cut", 0, 3.0, jfk[3 * 16000 : 8 * 16000], prompt="Thank you.")
    without = tiny.transcribe_windows([plain])[0]
    alone = tiny.transcribe_windows([prompted])[0]
    batched = tiny.transcribe_windows([plain, other, prompted])  # three prompt lengths in one call
    assert alone.text != without.text  # the prompt changed the decode (punctuation, casing)
    assert batched[2].text == alone.text and batched[2].words == alone.words
    assert batched[0].text == without.text
    assert "country" in batched[1].text.lower()
    sequential = tiny.transcribe_window(prompted)
    assert sequential.text != tiny.transcribe_window(plain).text
    assert "ask not what your country" in sequential.text.lower()
