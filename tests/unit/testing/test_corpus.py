"""Corpus helpers: where the long silence lies, which words fall in it, and looped stream audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stream_app.testing.corpus import SAMPLE_RATE, build_corpus, build_item, cycle_audio, words_in_spans


def test_words_in_spans_counts_words_whose_middle_is_inside() -> None:
    spans = [(10.0, 18.0)]
    words = [(9.5, 10.4), (12.0, 12.5), (17.0, 17.5), (17.6, 18.4), (20.0, 20.3)]
    # (9.5, 10.4): middle 9.95, before the span; (17.6, 18.4): middle 18.0, inside the margin.
    assert words_in_spans(words, spans) == 2
    assert words_in_spans(words, spans, margin=0.0) == 3
    assert words_in_spans(words, []) == 0


def test_words_in_spans_handles_several_spans() -> None:
    assert words_in_spans([(1.0, 1.2), (5.0, 5.2)], [(0.0, 2.0), (4.0, 6.0)]) == 2


def _looped(pieces: list[np.ndarray], total: float, slice_s: float, pause: float) -> np.ndarray:
    return np.concatenate(list(cycle_audio(pieces, total, slice_s, pause_seconds=pause)))


def test_cycle_audio_loops_pieces_with_pauses() -> None:
    a = np.full(SAMPLE_RATE // 2, 0.5, np.float32)
    b = np.full(SAMPLE_RATE // 4, -0.25, np.float32)
    out = _looped([a, b], 3.0, 0.7, 0.25)
    pause = np.zeros(SAMPLE_RATE // 4, np.float32)
    one_loop = np.concatenate([a, pause, b, pause])  # 1.25 s
    expected = np.concatenate([one_loop, one_loop, one_loop])[: 3 * SAMPLE_RATE]
    assert out.shape == (3 * SAMPLE_RATE,)
    np.testing.assert_array_equal(out, expected)


def test_cycle_audio_does_not_depend_on_the_slice_length() -> None:
    rng = np.random.default_rng(3)
    pieces = [rng.standard_normal(n).astype(np.float32) for n in (1234, 5678, 91)]
    reference = _looped(pieces, 2.0, 2.0, 0.1)
    for slice_s in (0.013, 0.5, 1.999, 10.0):
        np.testing.assert_array_equal(_looped(pieces, 2.0, slice_s, 0.1), reference)


def test_cycle_audio_slices_are_bounded() -> None:
    pieces = [np.ones(SAMPLE_RATE * 10, np.float32)]
    sizes = [s.shape[0] for s in cycle_audio(pieces, 25.0, 4.0)]
    assert max(sizes) == 4 * SAMPLE_RATE
    assert sum(sizes) == 25 * SAMPLE_RATE


def test_cycle_audio_refuses_nothing_to_loop() -> None:
    with pytest.raises(ValueError, match="nothing to loop"):
        list(cycle_audio([np.zeros(0, np.float32)], 1.0, 1.0, pause_seconds=0.0))
    with pytest.raises(ValueError, match="slice_seconds"):
        list(cycle_audio([np.ones(10, np.float32)], 1.0, 0.0))


def test_build_item_records_the_long_silence(tmp_path: Path) -> None:
    item = build_item(
        tmp_path / "x.wav",
        ["Good morning.", "See you soon."],
        "en-us",
        175,
        pause_seconds=(0.5,),
        long_silence_after=0,
        long_silence_seconds=3.0,
        noise_level=0.0,
    )
    assert len(item.silences) == 1
    start, end = item.silences[0]
    assert end - start == pytest.approx(3.0, abs=1e-3)
    audio, rate = sf.read(item.path, dtype="float32")
    assert rate == SAMPLE_RATE
    first, last = round(start * SAMPLE_RATE), round(end * SAMPLE_RATE)
    assert np.abs(audio[first:last]).max() == 0.0  # silent (no noise asked for)
    assert np.abs(audio[last : last + SAMPLE_RATE]).max() > 0.05  # the next sentence starts right after
    assert np.abs(audio[first - SAMPLE_RATE // 2 : first]).max() > 0.0  # the first one ends just before


def test_build_corpus_keeps_silences_across_reloads(tmp_path: Path) -> None:
    built = build_corpus(tmp_path, files=2, sentences_per_file=2, long_silence=True, seed=5)
    again = build_corpus(tmp_path, files=2, sentences_per_file=2, long_silence=True, seed=5)
    assert built == again
    assert len(built[0].silences) == 1 and built[1].silences == ()
