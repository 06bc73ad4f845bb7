"""Handing partitions over: at a rebalance only those that move, and on a stop all of them, cleanly.

aiokafka has no cooperative rebalancing, so faust revokes every partition at every rebalance and
assigns the new set right after. Only the difference is a change of owner (`moved`): a partition that
stays keeps its streams in memory and its steps running; only one that goes is closed.

A stop (SIGTERM: a rolling upgrade, a scale-in) hands everything over at once (`hand_over`): no record
is taken any more, the steps in flight get ``timeout`` seconds to finish (a step's segments and state
are stored together, so one that is cut short is simply done again by the next owner), the streams
changed since are stored so their records can be acknowledged, and the acknowledged offsets are
committed. The consumer then leaves the group (`stream_app.worker.membership`), and the next owner
reads on from the commit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

FLUSH_MIN = 0.5  # s: storing what changed gets at least this long, even after a long wait for steps
POLL = 0.02  # s
# s: after the drain, faust's own stop (tables flushed and closed, last commit, LeaveGroup, producer
# flushed) and the process's exit; measured well under 5 s on a loaded 2-core machine
STOP_MARGIN = 20.0


def stop_budget(drain_timeout: float) -> float:
    """Seconds a stopping replica needs before it may be killed (``terminationGracePeriodSeconds``)."""
    return drain_timeout + FLUSH_MIN + STOP_MARGIN


def moved(owned: Iterable[int], assigned: Iterable[int]) -> tuple[set[int], set[int]]:
    """Return the partitions given up and taken over when ``owned`` becomes ``assigned``."""
    before, after = set(owned), set(assigned)
    return before - after, after - before


StreamKey = tuple[int, str]  # (partition, stream id)


class Drainable(Protocol):
    """What a hand-over needs of the stream processor (`stream_app.worker.processor.StreamProcessor`)."""

    draining: bool

    def busy_streams(self) -> set[StreamKey]:
        """Streams with a step running."""
        ...

    def unstored_streams(self) -> set[StreamKey]:
        """Streams with changes not yet stored."""
        ...

    def store_changed(self) -> None:
        """Start storing every changed stream that has no step running."""
        ...


@dataclass(frozen=True)
class HandoverReport:
    """How a stop went: steps that finished or were left to the next owner, and how long it took."""

    steps_in_flight: int
    steps_abandoned: int
    streams_unstored: int
    seconds: float


async def hand_over(
    processor: Drainable,
    commit: Callable[[], Awaitable[object]],
    timeout: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    poll: float = POLL,
) -> HandoverReport:
    """Stop taking records, let steps finish (at most ``timeout``), store what changed, commit."""
    started = clock()
    processor.draining = True
    in_flight = len(processor.busy_streams())
    deadline = started + timeout
    while processor.busy_streams() and clock() < deadline:
        await asyncio.sleep(poll)
    abandoned = processor.busy_streams()  # left as they are: the next owner does their step again
    deadline = max(deadline, clock() + FLUSH_MIN)
    while True:
        processor.store_changed()
        waiting = (processor.unstored_streams() | processor.busy_streams()) - abandoned
        if not waiting or clock() >= deadline:
            break
        await asyncio.sleep(poll)
    unstored = len(processor.unstored_streams())
    await commit()
    return HandoverReport(in_flight, len(abandoned), unstored, clock() - started)
