"""The watchdog's register of model calls in progress: how long the oldest has run, and when it is stalled."""

from __future__ import annotations

from concurrent.futures import Future

import numpy as np
import pytest

from stream_app.inference.scheduling import Task
from stream_app.inference.types import WindowJob
from stream_app.inference.watchdog import InferenceTimeout, Watchdog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_oldest_running_call_decides_and_finished_calls_do_not_count() -> None:
    clock = Clock()
    watchdog = Watchdog(5.0, clock=clock)
    try:
        assert watchdog.oldest_call_seconds() == 0.0 and not watchdog.stalled()
        first = watchdog.call_started([])
        clock.now += 3.0
        second = watchdog.call_started([])
        clock.now += 2.5
        assert watchdog.oldest_call_seconds() == 5.5 and watchdog.stalled()
        watchdog.call_ended(first)
        assert watchdog.oldest_call_seconds() == 2.5 and not watchdog.stalled()
        watchdog.call_ended(second)
        watchdog.call_ended(second)  # ending twice is harmless
        assert watchdog.oldest_call_seconds() == 0.0
    finally:
        watchdog.close()


def task(seq: int) -> Task:
    job = WindowJob(f"s{seq}", 0, 0.0, np.zeros(1600, np.float32))
    return Task(0, 0.0, seq, job, Future(), 0.0)


def test_a_call_that_returned_is_not_timed_out_however_late_the_watchdog_looks() -> None:
    clock = Clock()
    timed_out: list[int] = []
    watchdog = Watchdog(5.0, clock=clock, on_timeout=lambda t: timed_out.append(t.seq))
    try:
        returned, marker = task(1), task(2)
        call = watchdog.call_started([returned])
        with watchdog._cond:  # the call returns past its deadline, before the watchdog has looked
            clock.now += 6.0
            watchdog.call_ended(call)
        watchdog.call_started([marker])  # a call that is still running when its deadline passes
        clock.now += 6.0
        watchdog.call_started([])  # wakes the watchdog: both deadlines have passed, the returned call's first
        with pytest.raises(InferenceTimeout):
            marker.future.result(timeout=30)
        assert not returned.future.done() and timed_out == [2]
    finally:
        watchdog.close()
