"""An idle reader behind its partition's end reads the records it missed again (PartitionState.missing_tail)."""

from __future__ import annotations

from stream_app.worker.acks import PartitionAcks
from stream_app.worker.partitions import PartitionState
from stream_app.worker.scope import PartitionScope

AFTER = 10.0


def partition(delivered_at: float = 0.0) -> PartitionState:
    part = PartitionState(0, PartitionScope(0), PartitionAcks(lambda _: None, 100))
    part.delivered_at = delivered_at
    return part


def test_a_taken_over_partition_whose_records_never_arrived_is_read_again_from_its_commit() -> None:
    part = partition()
    assert part.missing_tail(end_offset=40, committed=28, now=AFTER - 0.1, after=AFTER) is None  # not idle yet
    assert part.missing_tail(end_offset=40, committed=28, now=AFTER, after=AFTER) == 28
    for offset in range(28, 35):  # the re-read brings them
        part.order.offer(offset, f"record {offset}")
    assert part.missing_tail(end_offset=40, committed=28, now=2 * AFTER, after=AFTER) == 35


def test_a_tail_that_a_re_read_does_not_bring_is_not_asked_for_again() -> None:
    part = partition()  # offsets 38 and 39: a transactional producer's commit markers, say
    for offset in range(28, 38):
        part.order.offer(offset, f"record {offset}")
    assert part.missing_tail(end_offset=40, committed=28, now=AFTER, after=AFTER) == 38
    assert part.missing_tail(end_offset=40, committed=28, now=5 * AFTER, after=AFTER) is None


def test_a_reader_that_lost_the_records_after_its_last_one_reads_again_from_the_first_it_lacks() -> None:
    part = partition()
    for offset in range(28, 30):
        part.order.offer(offset, f"record {offset}")
    assert part.missing_tail(end_offset=40, committed=28, now=AFTER, after=AFTER) == 30


def test_a_reader_at_the_end_a_busy_reader_or_one_waiting_for_a_re_read_asks_nothing() -> None:
    caught_up = partition()
    for offset in range(28, 40):
        caught_up.order.offer(offset, offset)
    assert caught_up.missing_tail(end_offset=40, committed=28, now=AFTER, after=AFTER) is None
    busy = partition()
    busy.reading = True  # waiting for room in the pool, or for its take-over: faust holds the rest
    assert busy.missing_tail(end_offset=40, committed=28, now=AFTER, after=AFTER) is None
    holding = partition()
    holding.order.offer(28, 28)
    holding.order.offer(31, 31)  # 29 and 30 were asked for already (OffsetOrder.reread_from)
    assert holding.missing_tail(end_offset=40, committed=28, now=AFTER, after=AFTER) is None
    unknown = partition()
    assert unknown.missing_tail(end_offset=40, committed=None, now=AFTER, after=AFTER) is None
