import pytest
from prometheus_client import CollectorRegistry

from stream_app.metrics.lag import (
    BehindSince,
    ConsumerLagGauges,
    PartitionSample,
    partition_lag,
    records_behind,
    seconds_behind,
)


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def value(registry: CollectorRegistry, name: str, partition: int) -> float | None:
    return registry.get_sample_value(name, {"partition": str(partition)})


# --- records behind ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("high_watermark", "position", "log_start", "expected"),
    [
        (100, 100, 0, 0),  # caught up: the position is the next offset to be written
        (100, 90, 0, 10),
        (100, 101, 0, 0),  # position read after the watermark: never negative
        (100, None, 0, 100),  # nothing committed: starts from the beginning (auto_offset_reset=earliest)
        (100, None, 40, 60),  # ... which retention has moved on to 40
        (100, 10, 40, 60),  # records deleted by retention before they were consumed are not lag
        (0, None, 0, 0),  # an empty partition
    ],
)
def test_records_behind(high_watermark: int, position: int | None, log_start: int, expected: int) -> None:
    assert records_behind(high_watermark, position, log_start) == expected


# --- seconds behind ------------------------------------------------------------------------------


def test_caught_up_is_zero_seconds_whatever_the_timestamps() -> None:
    assert seconds_behind(0, 500.0, last_consumed_timestamp=100.0, behind_since=200.0) == 0.0


def test_oldest_pending_timestamp_gives_the_exact_wait() -> None:
    assert seconds_behind(5, 500.0, oldest_pending_timestamp=470.0, last_consumed_timestamp=100.0) == 30.0


def test_clock_skew_never_gives_a_negative_lag() -> None:
    assert seconds_behind(5, 500.0, oldest_pending_timestamp=503.0) == 0.0
    assert seconds_behind(5, 500.0, last_consumed_timestamp=503.0) == 0.0


def test_last_consumed_alone_is_the_upper_bound() -> None:
    assert seconds_behind(3, 500.0, last_consumed_timestamp=440.0) == 60.0


def test_behind_since_is_preferred_to_the_upper_bound() -> None:
    # A stream idle for 10 minutes whose newest chunk arrived 2 s ago: not 600 s of lag.
    assert seconds_behind(1, 1_000.0, last_consumed_timestamp=400.0, behind_since=998.0) == 2.0


def test_behind_since_is_capped_by_the_upper_bound() -> None:
    assert seconds_behind(1, 1_000.0, last_consumed_timestamp=990.0, behind_since=900.0) == 10.0


def test_unknown_when_nothing_tells_the_time() -> None:
    assert seconds_behind(7, 1_000.0) is None


def test_partition_lag_combines_both() -> None:
    sample = PartitionSample(partition=3, high_watermark=50, position=45, oldest_pending_timestamp=990.0)
    lag = partition_lag(sample, now=1_000.0)
    assert (lag.partition, lag.records, lag.seconds) == (3, 5, 10.0)


# --- behind since --------------------------------------------------------------------------------


def test_behind_since_restarts_on_progress_and_clears_when_caught_up() -> None:
    behind = BehindSince()
    stuck = PartitionSample(partition=0, high_watermark=10, position=5)
    assert behind.update(stuck, 5, now=100.0) == 100.0
    assert behind.update(stuck, 5, now=130.0) == 100.0  # same position: the clock keeps running
    moved = PartitionSample(partition=0, high_watermark=12, position=8)
    assert behind.update(moved, 4, now=140.0) == 140.0  # progress starts it again
    done = PartitionSample(partition=0, high_watermark=12, position=12)
    assert behind.update(done, 0, now=150.0) is None
    assert behind.update(moved, 4, now=160.0) == 160.0


# --- gauges --------------------------------------------------------------------------------------


def test_gauges_export_records_and_seconds_per_partition() -> None:
    registry, clock = CollectorRegistry(), Clock(1_000.0)
    gauges = ConsumerLagGauges(registry, clock=clock)
    gauges.observe(
        [
            PartitionSample(0, high_watermark=100, position=100, last_consumed_timestamp=990.0),
            PartitionSample(1, high_watermark=100, position=80, oldest_pending_timestamp=985.0),
        ]
    )
    assert value(registry, "stream_app_consumer_lag_records", 0) == 0
    assert value(registry, "stream_app_consumer_lag_seconds", 0) == 0
    assert value(registry, "stream_app_consumer_lag_records", 1) == 20
    assert value(registry, "stream_app_consumer_lag_seconds", 1) == 15


def test_a_stuck_partition_grows_by_the_sampling_clock() -> None:
    registry, clock = CollectorRegistry(), Clock(1_000.0)
    gauges = ConsumerLagGauges(registry, clock=clock)
    stuck = PartitionSample(2, high_watermark=10, position=4, last_consumed_timestamp=400.0)
    gauges.observe([stuck])
    assert value(registry, "stream_app_consumer_lag_seconds", 2) == 0.0
    clock.now += 45
    gauges.observe([stuck])
    assert value(registry, "stream_app_consumer_lag_seconds", 2) == 45.0


def test_without_timestamps_the_gauge_counts_from_the_first_sample_behind() -> None:
    registry, clock = CollectorRegistry(), Clock(1_000.0)
    gauges = ConsumerLagGauges(registry, clock=clock)
    [lag] = gauges.observe([PartitionSample(0, high_watermark=10, position=None)])
    assert (lag.records, lag.seconds) == (10, 0.0)
    clock.now += 12
    [lag] = gauges.observe([PartitionSample(0, high_watermark=11, position=None)])
    assert (lag.records, lag.seconds) == (11, 12.0)
    assert value(registry, "stream_app_consumer_lag_seconds", 0) == 12.0


def test_revoked_partitions_stop_being_exported() -> None:
    registry = CollectorRegistry()
    gauges = ConsumerLagGauges(registry, clock=Clock())
    gauges.observe([PartitionSample(p, 10, 5, oldest_pending_timestamp=990.0) for p in range(4)])
    gauges.forget([1])
    assert value(registry, "stream_app_consumer_lag_records", 1) is None
    assert value(registry, "stream_app_consumer_lag_records", 0) == 5
    gauges.forget_all_except([3])
    assert [value(registry, "stream_app_consumer_lag_records", p) for p in range(4)] == [None, None, None, 5]
    gauges.forget([7])  # never owned: nothing to do


def test_a_partition_that_comes_back_starts_its_clock_again() -> None:
    registry, clock = CollectorRegistry(), Clock(1_000.0)
    gauges = ConsumerLagGauges(registry, clock=clock)
    stuck = PartitionSample(0, high_watermark=10, position=4)
    gauges.observe([stuck])
    clock.now += 100
    gauges.forget([0])
    gauges.observe([stuck])
    assert value(registry, "stream_app_consumer_lag_seconds", 0) == 0.0
