"""Handing partitions over: what moves at a rebalance, and a stop that finishes, stores and commits."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from stream_app.worker.handover import StreamKey, hand_over, moved


def test_only_partitions_that_change_owner_move() -> None:
    assert moved({0, 1, 2}, {1, 2, 3}) == ({0}, {3})
    assert moved({0, 1}, {0, 1}) == (set(), set())  # a rebalance elsewhere in the group moves nothing here
    assert moved(set(), {0}) == (set(), {0})


@dataclass
class FakeProcessor:
    """Steps that end after a number of polls; stores that take one poll."""

    steps: dict[StreamKey, int]  # stream -> polls until its step ends (-1: never)
    changed: set[StreamKey] = field(default_factory=set)
    draining: bool = False
    storing: dict[StreamKey, int] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def busy_streams(self) -> set[StreamKey]:
        self._tick()
        return {k for k, left in self.steps.items() if left != 0} | set(self.storing)

    def unstored_streams(self) -> set[StreamKey]:
        return set(self.changed)

    def store_changed(self) -> None:
        for key in list(self.changed):
            if self.steps.get(key, 0) == 0 and key not in self.storing:
                self.storing[key] = 1

    def _tick(self) -> None:
        for key, left in list(self.steps.items()):
            if left > 0:
                self.steps[key] = left - 1
        for key in list(self.storing):
            del self.storing[key]
            self.changed.discard(key)
            self.order.append(f"stored {key[1]}")


async def test_a_stop_lets_steps_finish_then_stores_then_commits() -> None:
    processor = FakeProcessor(steps={(0, "a"): 3, (1, "b"): 2}, changed={(0, "a"), (1, "c")})
    commits: list[str] = []

    async def commit() -> None:
        commits.append("commit")
        processor.order.append("commit")

    report = await hand_over(processor, commit, timeout=5.0, poll=0.001)
    assert processor.draining
    assert (report.steps_in_flight, report.steps_abandoned, report.streams_unstored) == (2, 0, 0)
    assert processor.order[-1] == "commit" and sorted(processor.order[:-1]) == ["stored a", "stored c"]


async def test_a_step_that_outlasts_the_drain_is_left_to_the_next_owner() -> None:
    processor = FakeProcessor(steps={(0, "stuck"): -1, (0, "quick"): 1}, changed={(0, "stuck"), (0, "other")})
    committed = asyncio.Event()

    async def commit() -> None:
        committed.set()

    report = await hand_over(processor, commit, timeout=0.05, poll=0.001)
    assert report.steps_abandoned == 1 and committed.is_set()
    assert processor.unstored_streams() == {(0, "stuck")}  # its records stay unacknowledged: re-read next
    assert report.streams_unstored == 1
