"""A replica above its share gives up what it took over last, so a returning replica gets back what moved."""

from __future__ import annotations

from faust.assignor.client_assignment import CopartitionedAssignment
from faust.assignor.copartitioned_assignor import CopartitionedAssignor

from stream_app.worker.assignment import (
    RecentFirstCopartitionedAssignor,
    TakeoverMemory,
    remembering,
    shed_order,
)

TOPICS = {"chunks", "streams-changelog", "audio-changelog"}
PARTITIONS = 8


def _members(
    actives: dict[str, set[int]], standbys: dict[str, set[int]] | None = None
) -> dict[str, CopartitionedAssignment]:
    standbys = standbys or {}
    return {
        member: CopartitionedAssignment(actives=set(parts), standbys=set(standbys.get(member, set())), topics=TOPICS)
        for member, parts in actives.items()
    }


def _assign(
    cls: type[CopartitionedAssignor], members: dict[str, CopartitionedAssignment], replicas: int = 1
) -> dict[str, set[int]]:
    result = cls(topics=TOPICS, cluster_asgn=members, num_partitions=PARTITIONS, replicas=replicas).get_assignment()
    return {member: set(a.actives) for member, a in result.items()}


def test_the_latest_taken_partitions_are_given_up_first_never_moved_ones_last() -> None:
    assert shed_order({0, 2, 4, 6}, {6: 3}) == [6, 4, 2, 0]
    assert shed_order({1, 3, 5, 7}, {5: 2, 7: 3, 1: 1}) == [7, 5, 1, 3]
    assert shed_order({1, 3}, {}) == [3, 1]


def test_a_killed_replica_that_returns_gets_back_what_moved_and_nothing_else_moves() -> None:
    memory = TakeoverMemory()
    start = {"r1-a": {0, 3, 6}, "r2-a": {1, 4, 7}, "r3-a": {2, 5}}
    with remembering(memory):
        assert _assign(RecentFirstCopartitionedAssignor, _members(start)) == start  # balanced: nothing moves
        # r1 is killed: the survivors take its partitions (promoting their standby copies)
        after_kill = _assign(
            RecentFirstCopartitionedAssignor,
            _members({"r2-a": {1, 4, 7}, "r3-a": {2, 5}}, {"r2-a": {0, 3}, "r3-a": {6}}),
        )
        assert after_kill["r2-a"] | after_kill["r3-a"] == set(range(PARTITIONS))
        moved = {0, 3, 6}
        # a rebalance that moves nothing (a member's metadata changed) keeps the marks
        assert _assign(RecentFirstCopartitionedAssignor, _members(after_kill)) == after_kill
        # r1 comes back as a new member with nothing: it gets partitions that moved at the kill
        back = _assign(RecentFirstCopartitionedAssignor, _members({**after_kill, "r1-b": set()}))
    assert back["r1-b"] and back["r1-b"] <= moved
    assert start["r2-a"] <= back["r2-a"] and start["r3-a"] <= back["r3-a"]  # their own streams never moved


def test_fausts_own_assignor_moves_partitions_that_never_moved() -> None:
    # the same return without the memory: faust sheds arbitrary partitions (what this module changes)
    after_kill = {"r2-a": {0, 1, 3, 4, 7}, "r3-a": {2, 5, 6}}
    back = _assign(CopartitionedAssignor, _members({**after_kill, "r1-b": set()}))
    assert not back["r1-b"] <= {0, 3, 6}


def test_without_a_memory_the_subclass_is_fausts_assignor() -> None:
    members = {"r2-a": {0, 1, 3, 4, 7}, "r3-a": {2, 5, 6}, "r1-b": set()}
    assert _assign(RecentFirstCopartitionedAssignor, _members(members)) == _assign(
        CopartitionedAssignor, _members(members)
    )


def test_without_standby_copies_the_assignment_is_fausts() -> None:
    memory = TakeoverMemory()
    members = {"r2-a": {0, 1, 3, 4, 7}, "r3-a": {2, 5, 6}, "r1-b": set()}
    with remembering(memory):
        ours = _assign(RecentFirstCopartitionedAssignor, _members(members), replicas=0)
    assert ours == _assign(CopartitionedAssignor, _members(members), replicas=0)
    assert memory.assignments == 1  # still marked, for the next assignment
