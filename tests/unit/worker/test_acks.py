from __future__ import annotations

import asyncio

import pytest

from stream_app.worker.acks import OffsetWatermark, PartitionAcks


def test_a_slow_head_holds_back_every_later_offset() -> None:
    marks = OffsetWatermark()
    for offset in (10, 11, 12, 13):
        marks.add(offset)
    assert marks.done(11) == [] and marks.done(13) == []  # the faust-streaming #606 case: gap of one at the head
    assert marks.done(10) == [10, 11]
    assert marks.done(12) == [12, 13]
    assert marks.in_flight == 0 and marks.oldest is None


def test_offsets_must_be_read_in_order() -> None:
    marks = OffsetWatermark()
    marks.add(5)
    with pytest.raises(ValueError):
        marks.add(5)


async def test_partition_acks_ack_in_offset_order_and_apply_backpressure() -> None:
    acked: list[str] = []
    acks: PartitionAcks[str] = PartitionAcks(acked.append, limit=3)
    tickets = [acks.add(offset, f"event-{offset}") for offset in (0, 1, 2)]
    waiting = asyncio.ensure_future(acks.wait_for_room())
    await asyncio.sleep(0)
    assert not waiting.done()  # three in flight: the reader waits
    tickets[2].done()
    tickets[1].done()
    assert acked == [] and not waiting.done()
    tickets[0].done()
    await asyncio.sleep(0)
    assert acked == ["event-0", "event-1", "event-2"] and waiting.done()
    tickets[0].done()  # a second done() changes nothing
    assert acked == ["event-0", "event-1", "event-2"]


def test_a_closed_partition_acknowledges_nothing() -> None:
    acked: list[str] = []
    acks: PartitionAcks[str] = PartitionAcks(acked.append, limit=10)
    ticket = acks.add(7, "event-7")
    acks.close()  # revoked: work from this assignment must never move the committed offset
    ticket.done()
    assert acked == []


def test_the_position_to_commit_is_the_oldest_record_in_flight() -> None:
    acks: PartitionAcks[str] = PartitionAcks(lambda _: None, limit=10)
    assert acks.position is None  # nothing read in this assignment: nothing to commit
    first = acks.add(5, "e5")
    second = acks.add(6, "e6")
    assert acks.position == 5
    second.done()
    assert acks.position == 5  # 6 is done, 5 is not
    first.done()
    assert acks.position == 7
