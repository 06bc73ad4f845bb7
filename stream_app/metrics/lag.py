"""Consumer lag of the input topic per partition: how many records and how many seconds a replica is behind.

The arithmetic is pure (`records_behind`, `seconds_behind`, `partition_lag`) so it is tested without
Kafka; `ConsumerLagGauges` publishes the results as Prometheus gauges and `BehindSince` remembers
when a partition started to fall behind. The worker samples its assigned partitions every few seconds
and calls `ConsumerLagGauges.observe`; on a rebalance it calls `ConsumerLagGauges.forget` for the
partitions it lost, so that two replicas never export the same partition.

Offsets follow Kafka's convention: the high watermark is the offset the next appended record will
get, and the position is the offset of the next record this replica has not finished (the offset it
commits: the last acknowledged offset + 1). Timestamps are seconds since the epoch (aiokafka's
``ConsumerRecord.timestamp`` is in milliseconds: divide by 1,000).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, CollectorRegistry, Gauge


def records_behind(high_watermark: int, position: int | None, log_start_offset: int = 0) -> int:
    """Return how many records of a partition this replica has not finished.

    Args:
        high_watermark: offset the next appended record will get (the partition's end offset).
        position: offset of the next record not yet finished, i.e. the committed offset; None when
            the group has neither committed nor consumed anything there (the replica starts from
            ``log_start_offset``, as ``auto_offset_reset="earliest"`` does).
        log_start_offset: first offset still on the broker (the low watermark).

    A position read after the watermark (the two come from different requests) gives 0, never a
    negative lag; records deleted by retention before they were consumed are not counted.
    """
    start = log_start_offset if position is None else max(position, log_start_offset)
    return max(0, high_watermark - start)


def seconds_behind(
    records: int,
    now: float,
    *,
    oldest_pending_timestamp: float | None = None,
    last_consumed_timestamp: float | None = None,
    behind_since: float | None = None,
) -> float | None:
    """Return how long the oldest unfinished record has waited, in seconds; None when it cannot be told.

    Args:
        records: `records_behind` for the partition; 0 means caught up, so 0 seconds.
        now: the current time, seconds since the epoch.
        oldest_pending_timestamp: broker timestamp of the oldest record read but not yet finished
            (the record at the position). When known, the answer is exact: ``now`` minus it.
        last_consumed_timestamp: broker timestamp of the last record finished. The record at the
            position was appended after it, so ``now`` minus it bounds the lag from above; on its own
            it overstates the lag of a stream that was idle before its newest chunk arrived.
        behind_since: when the replica first saw this partition behind at its current position
            (`BehindSince`). The pending record was appended before that moment, so ``now`` minus it
            bounds the lag from below, within one sampling interval.

    Without the exact timestamp the lower bound is preferred (capped by the upper one): it follows a
    stuck partition as closely as the sampling allows and does not jump when an idle stream resumes.
    Clocks that disagree (producer create-time ahead of this host) never give a negative lag.
    """
    if records <= 0:
        return 0.0
    if oldest_pending_timestamp is not None:
        return max(0.0, now - oldest_pending_timestamp)
    upper = None if last_consumed_timestamp is None else max(0.0, now - last_consumed_timestamp)
    lower = None if behind_since is None else max(0.0, now - behind_since)
    if lower is not None:
        return lower if upper is None else min(lower, upper)
    return upper


@dataclass(frozen=True)
class PartitionSample:
    """What the worker knows about one assigned partition of the input topic at one moment."""

    partition: int
    high_watermark: int
    position: int | None
    log_start_offset: int = 0
    oldest_pending_timestamp: float | None = None
    last_consumed_timestamp: float | None = None


@dataclass(frozen=True)
class PartitionLag:
    """A partition's lag: records behind, and seconds behind (None when it cannot be told)."""

    partition: int
    records: int
    seconds: float | None


def partition_lag(sample: PartitionSample, now: float, behind_since: float | None = None) -> PartitionLag:
    """Compute one partition's lag from a sample (see `records_behind` and `seconds_behind`)."""
    records = records_behind(sample.high_watermark, sample.position, sample.log_start_offset)
    seconds = seconds_behind(
        records,
        now,
        oldest_pending_timestamp=sample.oldest_pending_timestamp,
        last_consumed_timestamp=sample.last_consumed_timestamp,
        behind_since=behind_since,
    )
    return PartitionLag(sample.partition, records, seconds)


@dataclass
class BehindSince:
    """Remember, per partition, when it was first seen behind at its current position.

    A new position (progress) or a caught-up sample starts the clock again, so the value is the time
    the replica has been stuck behind the same record, measured on the sampling clock.
    """

    _first_seen: dict[int, tuple[int | None, float]] = field(default_factory=dict)

    def update(self, sample: PartitionSample, records: int, now: float) -> float | None:
        """Record a sample and return when the partition fell behind at this position (None: caught up)."""
        if records <= 0:
            self._first_seen.pop(sample.partition, None)
            return None
        seen = self._first_seen.get(sample.partition)
        if seen is None or seen[0] != sample.position:
            seen = (sample.position, now)
            self._first_seen[sample.partition] = seen
        return seen[1]

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop partitions this replica no longer owns."""
        for partition in partitions:
            self._first_seen.pop(partition, None)


class ConsumerLagGauges:
    """Export `stream_app_consumer_lag_records` and `stream_app_consumer_lag_seconds` by partition.

    Seconds are always known here: without a record timestamp they fall back on how long this
    replica has seen the partition behind at the same position (`BehindSince`).
    """

    def __init__(self, registry: CollectorRegistry | None = None, clock: Callable[[], float] = time.time) -> None:
        reg = registry if registry is not None else REGISTRY
        self._clock = clock
        self._behind = BehindSince()
        self._partitions: set[int] = set()
        self.records = Gauge(
            "stream_app_consumer_lag_records",
            "Records of the input topic this replica has not finished, by partition it owns",
            ["partition"],
            registry=reg,
        )
        self.seconds = Gauge(
            "stream_app_consumer_lag_seconds",
            "Seconds the oldest unfinished record of the input topic has waited, by partition it owns",
            ["partition"],
            registry=reg,
        )

    def observe(self, samples: Iterable[PartitionSample]) -> list[PartitionLag]:
        """Compute and export the lag of each sampled partition; return what was exported."""
        now = self._clock()
        lags: list[PartitionLag] = []
        for sample in samples:
            records = records_behind(sample.high_watermark, sample.position, sample.log_start_offset)
            since = self._behind.update(sample, records, now)
            lag = partition_lag(sample, now, since)
            label = str(sample.partition)
            self.records.labels(label).set(lag.records)
            # `since` is set whenever records > 0, so seconds_behind always has an answer here.
            self.seconds.labels(label).set(lag.seconds if lag.seconds is not None else 0.0)
            self._partitions.add(sample.partition)
            lags.append(lag)
        return lags

    def forget(self, partitions: Iterable[int]) -> None:
        """Stop exporting partitions that were revoked (another replica now reports them)."""
        asked = list(partitions)
        for partition in asked:
            if partition in self._partitions:
                self.records.remove(str(partition))
                self.seconds.remove(str(partition))
                self._partitions.discard(partition)
        self._behind.forget(asked)

    def forget_all_except(self, owned: Iterable[int]) -> None:
        """Keep only the partitions in ``owned`` (convenient right after an assignment)."""
        keep = set(owned)
        self.forget([p for p in list(self._partitions) if p not in keep])
