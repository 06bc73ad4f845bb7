"""Deliveries handed on in offset order, once each, whatever order faust delivers them in."""

from __future__ import annotations

from stream_app.worker.ordering import OffsetOrder


def offsets(ready: list[tuple[int, str]]) -> list[int]:
    return [offset for offset, _ in ready]


def test_a_record_fetched_before_the_seek_waits_for_the_ones_before_it() -> None:
    order: OffsetOrder[str] = OffsetOrder()
    assert offsets(order.offer(217, "a")) == [217] and offsets(order.offer(218, "b")) == [218]
    # seen after a rebalance: 221 (fetched before the seek) first, then the log again from the commit
    assert order.offer(221, "stale") == []
    assert offsets(order.offer(216, "again")) == []  # handed on before
    assert offsets(order.offer(219, "c")) == [219]
    assert offsets(order.offer(220, "d")) == [220, 221]
    assert offsets(order.offer(221, "again")) == [] and order.holes == 0 and order.held == 0


def test_an_offset_absent_from_the_log_is_given_up_when_the_log_is_read_past_it_again() -> None:
    order: OffsetOrder[str] = OffsetOrder()
    order.offer(10, "a")
    assert order.offer(12, "b") == []  # 11 is a transaction marker: never delivered
    assert offsets(order.offer(12, "b again")) == [12] and order.holes == 1


def test_holes_are_given_up_after_a_while_or_when_too_many_records_wait() -> None:
    now = [0.0]
    order: OffsetOrder[str] = OffsetOrder(limit=3, max_wait=2.0, clock=lambda: now[0])
    order.offer(0, "a")
    assert order.offer(2, "b") == [] and order.offer(3, "c") == []
    now[0] = 2.5
    assert offsets(order.offer(4, "d")) == [2, 3, 4] and order.holes == 1
    assert order.offer(6, "e") == [] and order.offer(7, "f") == [] and order.offer(8, "g") == []
    assert offsets(order.offer(9, "h")) == [6, 7, 8, 9] and order.holes == 2  # three waited: the limit


def test_the_first_delivery_of_an_assignment_sets_where_it_starts() -> None:
    order: OffsetOrder[str] = OffsetOrder()
    assert offsets(order.offer(500, "a")) == [500] and order.expected == 501


def test_an_early_record_asks_once_for_a_re_read_from_the_one_missing() -> None:
    order: OffsetOrder[str] = OffsetOrder()
    order.offer(218, "a")
    assert order.reread_from() is None  # nothing waits
    assert order.offer(221, "fetched before the seek") == []
    assert order.reread_from() == 219 and order.reread_from() is None  # once per hole
    assert order.offer(222, "also early") == [] and order.reread_from() is None
    # the re-read brings 219 and 220, then 221 and 222 again: each handed on once, in order, nothing given up
    assert offsets(order.offer(219, "b")) == [219]
    assert offsets(order.offer(220, "c")) == [220, 221, 222]
    assert order.offer(221, "again") == [] and order.offer(222, "again") == [] and order.holes == 0
    assert order.offer(224, "d") == [] and order.reread_from() == 223  # a new hole asks again
