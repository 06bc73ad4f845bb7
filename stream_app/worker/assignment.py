"""Which partitions a replica above its share gives up: the ones it took over most recently.

faust's assignor keeps each member's partitions where it can, but a member above its share (a replica
came back or was added) sheds arbitrary ones (``CopartitionedAssignment.unassign_extras`` pops from a
set, in practice the lowest partition numbers). After a kill the survivors hold the dead replica's
partitions besides their own; when it returns, each gave up one of its *own* partitions, so a kill
disturbed streams that had never moved (`bench failover`, docs/operations.md).

Here a member above its share gives up first the partitions it was given at the last rebalance this
leader computed: the ones that moved because of the event now move back (to the returning replica,
whose stored state for them is the most recent after the owner's), and streams that never moved stay
where they are. Everything else is faust's assignor as it is. The memory is the leader's: a new
leader starts without it and sheds as faust does.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from faust.assignor import partition_assignor as faust_partition_assignor
from faust.assignor.client_assignment import CopartitionedAssignment
from faust.assignor.copartitioned_assignor import CopartitionedAssignor
from faust.assignor.partition_assignor import PartitionAssignor

GroupKey = frozenset[str]  # the topics of one copartitioned group
TakenOver = MutableMapping[GroupKey, dict[str, set[int]]]  # group -> member id -> partitions given last time

_TAKEN_OVER: contextvars.ContextVar[TakenOver | None] = contextvars.ContextVar("taken_over", default=None)


def shed_order(actives: set[int], recent: set[int]) -> list[int]:
    """Return ``actives`` in the order to give them up: the recently taken first, each part highest first."""
    return sorted(actives & recent, reverse=True) + sorted(actives - recent, reverse=True)


def shed_extras(assignment: CopartitionedAssignment, capacity: int, replicas: int, recent: set[int]) -> None:
    """Bring one member down to ``capacity`` actives (and its standby share), the recently taken first."""
    order = shed_order(set(assignment.actives), recent)
    while len(assignment.actives) > capacity:
        assignment.actives.remove(order.pop(0))
    while len(assignment.standbys) > capacity * replicas:
        assignment.standbys.pop()  # as faust does


class RecentFirstCopartitionedAssignor(CopartitionedAssignor):
    """faust's copartitioned assignor, shedding recently taken partitions first (see the module docstring)."""

    def get_assignment(self) -> MutableMapping[str, CopartitionedAssignment]:
        """Return the assignment; remember what each member is given that it did not have."""
        memory = _TAKEN_OVER.get()
        if memory is None:  # not under `RecentFirstAssignor`: faust's own behaviour
            return super().get_assignment()
        key: GroupKey = frozenset(self.topics)
        recent = memory.get(key, {})
        before = {member: set(a.actives) for member, a in self._client_assignments.items()}
        capacity = (
            self.min_capacity
            if self.replicas == 0 and self.num_partitions > 0 and self.num_partitions >= self._num_clients
            else self.max_capacity
        )  # as faust's get_assignment (faust-streaming 0.15.3, pinned)
        for member, assignment in self._client_assignments.items():
            shed_extras(assignment, capacity, self.replicas, recent.get(member, set()))
        self._assign(active=True)
        self._assign(active=False)
        memory[key] = {
            member: set(assignment.actives) - before.get(member, set())
            for member, assignment in self._client_assignments.items()
        }
        return self._client_assignments


@contextmanager
def remembering(memory: TakenOver) -> Iterator[None]:
    """Let `RecentFirstCopartitionedAssignor` read and update ``memory`` within the block."""
    token = _TAKEN_OVER.set(memory)
    try:
        yield
    finally:
        _TAKEN_OVER.reset(token)


class RecentFirstAssignor(PartitionAssignor):
    """faust's partition assignor with `RecentFirstCopartitionedAssignor` for every copartitioned group."""

    def __init__(self, app: Any, replicas: int = 0) -> None:
        super().__init__(app, replicas=replicas)
        self.taken_over: TakenOver = {}

    def _perform_assignment(self, cluster: Any, member_metadata: MutableMapping[str, Any]) -> Any:
        with remembering(self.taken_over):
            return super()._perform_assignment(cluster, member_metadata)


# faust's PartitionAssignor builds its copartitioned assignor by this module-level name (pinned version)
faust_partition_assignor.CopartitionedAssignor = RecentFirstCopartitionedAssignor  # type: ignore[attr-defined]
