"""Idle ends follow the records' own time: a stalled reader ends nothing (issue 17 item 5)."""

from __future__ import annotations

import pytest
from processor_standin import T0, Worker


async def test_a_stalled_reader_ends_no_stream() -> None:
    worker = Worker()
    worker.record("a", T0)
    await worker.tick(1.0)
    await worker.tick(120.0)  # the reader waits (a full pool, a slow step, a broker outage): no record, no end
    assert not worker.ended("a")
    worker.part.note_end(worker.offset + 5, T0 + 121.0, None)  # more records wait to be read
    await worker.tick(1.0)
    assert not worker.ended("a")
    worker.record("b", T0 + 30.0)  # the partition moved on, but not by the idle timeout
    await worker.tick(1.0)
    assert not worker.ended("a")
    worker.record("b", T0 + 61.0)  # another stream's record 61 s later: "a" has been silent that long
    await worker.tick(1.0)
    assert worker.ended("a") and not worker.ended("b")


@pytest.mark.parametrize("stalled", [False, True])
async def test_a_reader_caught_up_ends_a_quiet_stream_after_the_idle_timeout(stalled: bool) -> None:
    worker = Worker()
    worker.record("a", T0 - 3.0)  # the recorder's clock is 3 s behind the worker's: only elapsed time counts
    await worker.tick(30.0)
    worker.part.note_end(worker.offset, worker.wall.now, None)  # a fetch: nothing after "a"'s record
    await worker.tick(1.0)
    assert not worker.ended("a")
    await worker.tick(30.0)
    if stalled:  # no fetch answered since (the broker is down): the partition's time stays
        await worker.tick(60.0)
        assert not worker.ended("a")
    else:
        worker.part.note_end(worker.offset, worker.wall.now, None)
        await worker.tick(1.0)
        assert worker.ended("a")


async def test_streams_taken_over_end_by_their_own_record_time_not_while_the_new_owner_catches_up() -> None:
    first = Worker()
    first.record("d", T0)
    await first.tick(1.0)  # its header (with its record time) is stored; then its owner dies
    second = Worker(first.store)  # the next owner restores the partition from the same tables
    second.part.adopted = False
    second.wall.now = T0 + 200.0  # the failover took long; the new owner reads a backlog
    await second.tick(1.0)  # adopts "d"
    await second.tick(120.0)  # still reading the backlog: nothing says the partition moved on
    assert not second.ended("d")
    second.record("e", T0 + 30.0)  # the backlog: 30 s after "d"'s last record
    await second.tick(1.0)
    assert not second.ended("d")
    second.record("e", T0 + 61.0)
    await second.tick(1.0)
    assert second.ended("d")
