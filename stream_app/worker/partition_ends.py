"""Where each input partition ends, as the consumer last heard it from the broker (for idle ends).

The reader sees only the records it gets; whether more are waiting, and when the broker last said so,
only the consumer knows. faust exposes the end (``highwater``) but not when it was fetched, so the
fetch time is read from aiokafka's consumer behind faust's thread delegate, and the offset reading
started from (the committed offset) from faust's consumer: internals of the pinned faust-streaming
(as the tables' RocksDB access is). Anything missing makes the answer None: the partition's time then
moves with its records only, which can end a stream late but never early.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PartitionEnd:
    """The end of one partition as a fetch reported it."""

    offset: int  # the highwater: the offset the next record will get
    seen_at: float  # wall-clock seconds at which that fetch was answered
    committed: int | None  # the committed offset (where this assignment's reading started), if known


def partition_end(consumer: Any, tp: Any) -> PartitionEnd | None:
    """Return the partition's end as faust's consumer last fetched it, or None when not known (yet)."""
    try:
        highwater = consumer.highwater(tp)
        polled_ms = consumer._thread._ensure_consumer().last_poll_timestamp(tp)
        committed = consumer._committed_offset.get(tp)
    except Exception:  # not assigned (a rebalance), not started, or another consumer driver
        return None
    if highwater is None or polled_ms is None:
        return None
    return PartitionEnd(int(highwater), polled_ms / 1000.0, None if committed is None else int(committed))
