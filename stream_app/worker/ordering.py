"""A partition's records, handed on strictly in offset order and once each, whatever order faust delivers them in.

After a rebalance that a partition stays through, faust seeks it back to its committed offset and
delivers everything from there again; records its fetcher got before the seek may still come first.
So a record can arrive ahead of ones that were never read (seen: offset 221, then 219, 220, 221 again).
Taking 221 and skipping 219 and 220 as "already read" loses them: their chunks become ``lost_chunks``
gaps. `OffsetOrder` holds a record that comes early until the ones before it arrived.

faust keeps a read offset of its own per partition and drops every record below it. A record fetched
before the seek raises it, so the records the seek fetches again below it would be dropped there, never
reaching the reader: the worker's consumer keeps no such offset for the partitions whose order the
worker keeps (`stream_app.worker.membership`). When a record comes early, the reader asks for the
partition to be read again from the one it waits for (`reread_from`, once per hole).

A log can also have real holes (a transactional producer's commit markers, records removed by
retention): an offset is given up when a held record is delivered a second time (the log was read again
from before it and the offset was not there), when ``limit`` records wait, or, as a last resort, when the
oldest has waited ``max_wait`` seconds as records keep coming.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

E = TypeVar("E")

HOLD_LIMIT = 256
HOLD_MAX_WAIT = 10.0  # s: a re-read normally answers within a fetch; this only bounds a stuck one


@dataclass
class OffsetOrder(Generic[E]):
    """Reorder one partition's deliveries by offset; see the module docstring."""

    limit: int = HOLD_LIMIT
    max_wait: float = HOLD_MAX_WAIT
    clock: Callable[[], float] = time.monotonic
    expected: int | None = None  # the next offset to hand on (None: the first delivery decides)
    holes: int = 0  # offsets given up as absent from the log
    _held: dict[int, tuple[E, float]] = field(default_factory=dict)
    _asked: int | None = None  # the offset a re-read was last asked from

    def offer(self, offset: int, item: E) -> list[tuple[int, E]]:
        """Take one delivery; return the records now ready, in offset order (each offset once)."""
        if self.expected is None:
            self.expected = offset
        if offset < self.expected:
            return []  # handed on before: a re-delivery after a seek
        if offset > self.expected:
            if offset in self._held or len(self._held) >= self.limit or self._oldest_wait() >= self.max_wait:
                self._give_up_missing()
            if offset > self.expected:
                self._held.setdefault(offset, (item, self.clock()))
        if offset == self.expected:
            self._held.pop(offset, None)
            ready = [(offset, item)]
            self.expected += 1
        else:
            ready = []
        while self.expected in self._held:
            ready.append((self.expected, self._held.pop(self.expected)[0]))
            self.expected += 1
        return ready

    def reread_from(self) -> int | None:
        """Return the offset to read the partition again from, once per hole (None: nothing to ask)."""
        if self._held and self.expected is not None and self._asked != self.expected:
            self._asked = self.expected
            return self.expected
        return None

    @property
    def held(self) -> int:
        """Records waiting for an earlier offset."""
        return len(self._held)

    def _oldest_wait(self) -> float:
        return self.clock() - min((at for _, at in self._held.values()), default=self.clock())

    def _give_up_missing(self) -> None:
        """Take the offsets before the first held record as absent from the log, and go on from it."""
        if self._held and self.expected is not None:
            first = min(self._held)
            self.holes += first - self.expected
            self.expected = first
