"""The last try on speech a cut left without words adds words there; it never trades away words already heard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stream_app.inference import transcriber as module
from stream_app.inference.context import FULL_CONTEXT
from stream_app.inference.models import resolve_model
from stream_app.inference.transcriber import WhisperTranscriber
from stream_app.inference.types import DecodeKind, Priority, WindowJob, Word


@pytest.fixture(scope="module")
def transcriber() -> WhisperTranscriber:
    path = resolve_model("tiny.en", Path("~/.cache/stream-app/models").expanduser())
    return WhisperTranscriber(path, model_name="tiny.en", precision="int8", cpu_threads=1)


def word(start: float, end: float, text: str) -> Word:
    return Word(start, end, text, 0.9)


def item_with(words: list[Word]) -> Any:
    samples = np.zeros(10 * 16_000, dtype=np.float32)
    job = WindowJob("s", 3, 0.0, samples, Priority.FINAL, kind=DecodeKind.CUT)
    return module._Item(0, job, samples, [(0.5, 9.0)], words=words)


def test_the_retry_fills_the_speech_left_without_words_and_keeps_the_words_it_missed(
    transcriber: WhisperTranscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    heard = [word(0.5, 0.9, "one"), word(1.0, 1.4, "two"), word(3.0, 3.4, "three"), word(3.5, 3.9, "four")]
    # the full-context retry hears 4.5-9 s (speech the window left without words) but passes over 3-4 s,
    # covering more time in all: taken wholesale, "three four" were lost and their span became a gap
    retried = [word(0.5, 0.9, "one"), word(1.0, 1.4, "two"), *(word(4.5 + i, 5.3 + i, f"w{i}") for i in range(4))]

    def decode(parts: list[Any], context: Any, **_: Any) -> None:
        assert context is FULL_CONTEXT
        for part in parts:
            part.words = list(retried)

    monkeypatch.setattr(transcriber, "_decode", decode)
    item = item_with(list(heard))
    assert transcriber._uncovered(item)  # 1.7-2.7 s and 4.2-9 s have speech and no word
    transcriber._left_over([item], [None], 0.0)
    assert [w.text for w in item.words] == ["one", "two", "three", "four", "w0", "w1", "w2", "w3"]
    assert transcriber._uncovered(item) == [pytest.approx((1.7, 2.7)), pytest.approx((8.6, 9.0))]


def test_a_retry_that_fell_back_adds_nothing(transcriber: WhisperTranscriber, monkeypatch: pytest.MonkeyPatch) -> None:
    def decode(parts: list[Any], context: Any, **_: Any) -> None:
        for part in parts:
            part.words, part.fallback = [word(5.0, 5.5, "loop")], "repetition"

    monkeypatch.setattr(transcriber, "_decode", decode)
    item = item_with([word(0.5, 0.9, "one")])
    transcriber._left_over([item], [None], 0.0)
    assert [w.text for w in item.words] == ["one"] and item.full_done


def test_a_retry_that_times_the_window_s_words_later_adds_no_copy_of_them(
    transcriber: WhisperTranscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    heard = [word(0.5, 0.9, "one"), word(1.0, 1.4, "two")]
    retried = [word(0.9, 1.3, "one"), word(1.5, 1.9, "two"), word(2.6, 3.0, "Two."), word(5.0, 5.4, "three")]

    def decode(parts: list[Any], context: Any, **_: Any) -> None:
        for part in parts:
            part.words = list(retried)

    monkeypatch.setattr(transcriber, "_decode", decode)
    item = item_with(list(heard))
    transcriber._left_over([item], [None], 0.0)
    # "one" and "two" heard again later are the window's own words ("two" is also not wholly in speech the
    # window left without words); "Two." 1.6 s after the window's "two" is a word said again, and kept
    assert [w.text for w in item.words] == ["one", "two", "Two.", "three"]


def test_figures_the_model_gave_as_nan_become_the_least_sure_finite_ones(transcriber: WhisperTranscriber) -> None:
    """A segment must carry finite numbers: a NaN would stop its stream's publishing (JSON has no NaN)."""
    from stream_app.inference.decode import Segment

    samples = np.zeros(4 * 16_000, dtype=np.float32)
    job = WindowJob("s", 3, 10.0, samples, Priority.INTERIM, kind=DecodeKind.PREVIEW)
    words = [Word(0.5, 0.9, "one", float("nan")), Word(1.0, 1.4, "two", 1.7)]
    item = module._Item(0, job, samples, [(0.5, 1.5)], words=words)
    item.segments = [Segment(0.5, 1.4, "one two", [], float("nan"), float("nan"))]
    result = transcriber._result(item, 0.0)
    assert [w.probability for w in result.words] == [0.0, 1.0]
    assert result.avg_logprob == module.LOWEST_LOGPROB and result.no_speech_prob == 1.0
