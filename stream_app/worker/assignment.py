"""Which partitions a replica above its share gives up: the ones it took over most recently.

faust's assignor keeps each member's partitions where it can, but a member above its share (a replica
came back or was added) sheds arbitrary ones (``CopartitionedAssignment.unassign_extras`` pops from a
set, in practice the lowest partition numbers). After a kill the survivors hold the dead replica's
partitions besides their own; when it returns, each gave up one of its *own* partitions, so a kill
disturbed streams that had never moved (`bench failover`, docs/operations.md).

Here a member above its share gives up first the partitions it took over most recently (each
partition is marked with the rebalance that gave it to its member; never-moved ones have no mark and
go last): what moved because of the event moves back (to the returning replica, whose stored state for
it is the most recent after the owner's), and streams that never moved stay where they are. The marks
are the leader's: a new leader has none and gives up the highest-numbered partitions first, as
arbitrary as faust. Without standby copies faust cuts every member to its floor share and refills
round robin, which undoes any choice made here, so that case is left to faust as it is.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from faust.assignor import partition_assignor as faust_partition_assignor
from faust.assignor.client_assignment import CopartitionedAssignment
from faust.assignor.copartitioned_assignor import CopartitionedAssignor
from faust.assignor.partition_assignor import PartitionAssignor

GroupKey = frozenset[str]  # the topics of one copartitioned group
Marks = dict[str, dict[int, int]]  # member id -> partition -> the assignment that gave it to that member


@dataclass
class TakeoverMemory:
    """The leader's marks: which assignment gave each member each of its partitions."""

    assignments: int = 0
    marks: dict[GroupKey, Marks] = field(default_factory=dict)


_MEMORY: contextvars.ContextVar[TakeoverMemory | None] = contextvars.ContextVar("takeover_memory", default=None)


def shed_order(actives: set[int], marks: Mapping[int, int]) -> list[int]:
    """Return ``actives`` in the order to give them up: latest taken over first, never-moved ones last."""
    return sorted(actives, key=lambda p: (marks.get(p, 0), p), reverse=True)


def shed_extras(assignment: CopartitionedAssignment, capacity: int, replicas: int, marks: Mapping[int, int]) -> None:
    """Bring one member down to ``capacity`` actives (and its standby share), the latest taken over first."""
    order = shed_order(set(assignment.actives), marks)
    while len(assignment.actives) > capacity:
        assignment.actives.remove(order.pop(0))
    while len(assignment.standbys) > capacity * replicas:
        assignment.standbys.pop()  # as faust does


def carry_marks(before: Mapping[str, set[int]], after: Mapping[str, set[int]], marks: Marks, now: int) -> Marks:
    """Return the marks after an assignment: kept partitions keep theirs, newly given ones get ``now``."""
    return {
        member: {p: (marks.get(member, {}).get(p, 0) if p in before.get(member, set()) else now) for p in parts}
        for member, parts in after.items()
    }


class RecentFirstCopartitionedAssignor(CopartitionedAssignor):
    """faust's copartitioned assignor, shedding recently taken partitions first (see the module docstring)."""

    def get_assignment(self) -> MutableMapping[str, CopartitionedAssignment]:
        """Return the assignment; mark what each member is given that it did not have."""
        memory = _MEMORY.get()
        if memory is None:  # not under `RecentFirstAssignor`: faust's own behaviour
            return super().get_assignment()
        key: GroupKey = frozenset(self.topics)
        marks = memory.marks.get(key, {})
        before = {member: set(a.actives) for member, a in self._client_assignments.items()}
        if self.replicas == 0:
            result = super().get_assignment()  # faust cuts all to the floor and refills: nothing to choose
        else:  # faust's get_assignment with replicas, shedding in our order (faust-streaming 0.15.3, pinned)
            for member, assignment in self._client_assignments.items():
                shed_extras(assignment, self.max_capacity, self.replicas, marks.get(member, {}))
            self._assign(active=True)
            self._assign(active=False)
            result = self._client_assignments
        memory.assignments += 1
        after = {member: set(a.actives) for member, a in result.items()}
        memory.marks[key] = carry_marks(before, after, marks, memory.assignments)
        return result


@contextmanager
def remembering(memory: TakeoverMemory) -> Iterator[None]:
    """Let `RecentFirstCopartitionedAssignor` read and update ``memory`` within the block."""
    token = _MEMORY.set(memory)
    try:
        yield
    finally:
        _MEMORY.reset(token)


class RecentFirstAssignor(PartitionAssignor):
    """faust's partition assignor with `RecentFirstCopartitionedAssignor` for every copartitioned group.

    Given to the app as its ``PartitionAssignor`` setting.
    """

    def __init__(self, app: Any, replicas: int = 0) -> None:
        super().__init__(app, replicas=replicas)
        self.memory = TakeoverMemory()

    def _perform_assignment(self, cluster: Any, member_metadata: MutableMapping[str, Any]) -> Any:
        with remembering(self.memory):
            return super()._perform_assignment(cluster, member_metadata)


# faust's PartitionAssignor builds its copartitioned assignor by this module-level name (pinned version)
faust_partition_assignor.CopartitionedAssignor = RecentFirstCopartitionedAssignor  # type: ignore[attr-defined]
