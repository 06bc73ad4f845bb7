"""The watchdog's register of model calls in progress: how long the oldest has run, and when it is stalled."""

from __future__ import annotations

from stream_app.inference.watchdog import Watchdog


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
