"""`bench capacity`'s own arithmetic: stream counts, and which lag a word's segment counts for."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from stream_app.bench.capacity import _doubling, _observe, _Stream
from stream_app.inference.types import Word
from stream_app.streaming import LiveConfig, StreamSession
from stream_app.testing.segments import make_segment


def test_stream_counts_double_up_to_the_limit() -> None:
    assert _doubling(1, 64) == [1, 2, 4, 8, 16, 32, 64]
    assert _doubling(3, 20) == [3, 6, 12]
    assert _doubling(0, 1) == [1]


def test_a_word_counts_for_emission_once_and_for_the_final_lag_when_final() -> None:
    stream = _Stream(0, StreamSession("s", LiveConfig()), np.zeros(16000, np.float32), t0=100.0)
    word = Word(1.0, 1.5, "hello", 0.9)
    interim = make_segment("s", 0, "hello", final=False)
    final = make_segment("s", 0, "hello")
    _observe(stream, [dataclasses.replace(interim, words=(word,))], at=101.8)
    _observe(stream, [dataclasses.replace(final, words=(word,))], at=103.0)
    assert stream.emission == [pytest.approx(0.3)]  # shown 0.3 s after its audio ended; the final: nothing new
    assert stream.final == [pytest.approx(1.5)]
