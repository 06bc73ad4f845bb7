from cache_helpers import ManualClock

from stream_app.cache.breaker import BreakerState, CircuitBreaker


def _breaker(clock: ManualClock, changes: list[BreakerState] | None = None) -> CircuitBreaker:
    return CircuitBreaker(3, 5.0, clock=clock, on_change=None if changes is None else changes.append)


def test_opens_after_consecutive_failures_only() -> None:
    clock = ManualClock()
    breaker = _breaker(clock)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # resets the count
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.allow() and breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()


def test_half_open_admits_one_probe_and_closes_on_success() -> None:
    clock = ManualClock()
    changes: list[BreakerState] = []
    breaker = _breaker(clock, changes)
    for _ in range(3):
        breaker.record_failure()
    clock.advance(4.9)
    assert not breaker.allow()
    clock.advance(0.2)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()  # the probe is still out
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_failed_probe_reopens_for_another_period() -> None:
    clock = ManualClock()
    breaker = _breaker(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.advance(5.0)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.advance(4.0)
    assert not breaker.allow()
    clock.advance(1.0)
    assert breaker.allow()
