"""Model calls side by side, except a suspect window's, which runs with no other call in the process.

A window marked ``isolated`` belongs to a stream whose windows were in the model when a worker died.
If it is a poison window it will kill this process too, and every window in the model at that moment
is counted against its stream. Running it alone, with the other replicas idle, blames it only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class CallGate:
    """A readers-writer gate over model calls: shared for ordinary batches, exclusive for isolated ones.

    A waiting exclusive call holds back new shared ones, so it is not starved by a busy pool.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0

    @contextmanager
    def enter(self, *, exclusive: bool) -> Iterator[None]:
        """Hold the gate for one model call (``exclusive``: no other call runs meanwhile)."""
        with self._cond:
            if exclusive:
                self._waiting += 1
                self._cond.wait_for(lambda: not self._exclusive and self._shared == 0)
                self._waiting -= 1
                self._exclusive = True
            else:
                self._cond.wait_for(lambda: not self._exclusive and self._waiting == 0)
                self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                if exclusive:
                    self._exclusive = False
                else:
                    self._shared -= 1
                self._cond.notify_all()
