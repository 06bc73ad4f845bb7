"""The worker's word lag rule, shared by its metrics and `bench capacity`."""

from __future__ import annotations

import pytest

from stream_app.streaming.word_lags import observe_word_lags
from stream_app.testing.segments import make_segment


def test_a_word_counts_for_emission_once_and_for_final_when_final() -> None:
    interim = make_segment("s", 0, "a b", final=False, timed=True)  # words end at 1.75 and 3.5 s
    shown = observe_word_lags([interim], origin=100.0, at=105.0, shown_until=0.0)
    assert shown.emission == pytest.approx([3.25, 1.5]) and shown.final == [] and shown.shown_until == 3.5
    final = make_segment("s", 0, "a b", final=True, timed=True)
    made = observe_word_lags([final], origin=100.0, at=106.0, shown_until=shown.shown_until)
    assert made.emission == [] and made.final == pytest.approx([4.25, 2.5]) and made.shown_until == 3.5


def test_a_word_heard_in_the_future_has_no_negative_lag() -> None:
    early = observe_word_lags([make_segment("s", 0, "a", timed=True)], origin=100.0, at=101.0, shown_until=0.0)
    assert early.emission == [0.0] and early.final == [0.0]
