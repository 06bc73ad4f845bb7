"""A circuit breaker: after repeated failures stop calling a backend, then probe it again later.

Pure logic with an injectable clock, so its state machine is tested without sleeping.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable


class BreakerState(enum.IntEnum):
    """The breaker's state; the integer is what the Prometheus gauge shows."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    """Opens after ``failures`` consecutive failures; after ``reset_after`` seconds lets one probe through.

    A successful probe closes it, a failed one opens it for another ``reset_after``. Thread-safe.
    """

    def __init__(
        self,
        failures: int,
        reset_after: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        self._threshold = failures
        self._reset_after = reset_after
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker past its reset time reads as half-open)."""
        with self._lock:
            if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self._reset_after:
                return BreakerState.HALF_OPEN
            return self._state

    def allow(self) -> bool:
        """Say whether a call may go to the backend now; a half-open breaker admits one probe at a time."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return True
            if self._state is BreakerState.OPEN:
                if self._clock() - self._opened_at < self._reset_after:
                    return False
                self._set(BreakerState.HALF_OPEN)
            if self._probe_in_flight:
                return False
            self._probe_in_flight = True
            return True

    def record_success(self) -> None:
        """Record a successful call: the backend is healthy again."""
        with self._lock:
            self._failures = 0
            self._probe_in_flight = False
            if self._state is not BreakerState.CLOSED:
                self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        """Record a failed call; open the breaker at the threshold, or at once when a probe failed."""
        with self._lock:
            self._failures += 1
            probe_failed = self._state is BreakerState.HALF_OPEN
            self._probe_in_flight = False
            if probe_failed or (self._state is BreakerState.CLOSED and self._failures >= self._threshold):
                self._opened_at = self._clock()
                self._set(BreakerState.OPEN)

    def _set(self, state: BreakerState) -> None:
        self._state = state
        if self._on_change is not None:
            self._on_change(state)
