"""Single flight: concurrent calls for one key in one process run the work once and share its result."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar, cast

_T = TypeVar("_T")


class _Flight(Generic[_T]):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: _T | None = None
        self.error: BaseException | None = None


class SingleFlight(Generic[_T]):
    """Coalesces concurrent calls by key: the first caller runs ``work``, the others wait for its outcome."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight[_T]] = {}

    def run(self, key: str, work: Callable[[], _T]) -> tuple[_T, bool]:
        """Run ``work`` once for all concurrent callers with this key.

        Returns:
            The result, and whether this caller ran the work itself (False: it shared another's).

        Raises:
            BaseException: whatever ``work`` raised, in the leader and in every waiter.
        """
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = _Flight()
                self._flights[key] = flight
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return cast(_T, flight.result), False
        try:
            flight.result = work()
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()
        return flight.result, True

    def in_flight(self) -> int:
        """How many keys are being computed now."""
        with self._lock:
            return len(self._flights)
