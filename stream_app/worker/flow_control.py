"""Flow control that keeps the standby changelog records a replica has fetched.

faust (faust-streaming 0.15.3, mode-streaming) buffers every changelog record it fetches in one queue,
``app.tables.changelog_queue``, created with ``clear_on_resume=True``, and mode's
``FlowControlEvent.resume`` empties such queues on every call, also when flow was not suspended.
faust's recovery (``faust/tables/recovery.py``) calls it up to four times after a rebalance: when the
active changelogs start, for the ``recovery_buffer_size == 1`` tables, when the standby changelogs
start, and when the stream partitions start. The standby partitions are resumed (and fetched) before
the last call, so the records still queued then were dropped (and puts waiting on a full queue were
cancelled), while the consumer's position had moved past them and nothing seeks a changelog back: a
standby replica's copy of a table then lacked records that later ones build on, and after a failover
to it a stream's header referred to an audio page it never received (the state was reset and the
stream's words since its last final were lost).

Here a resume empties the changelog queue only when flow was suspended before it. What protects a
replica from records of partitions it no longer owns is the explicit ``flow_control.clear()`` faust
calls on every revocation (after its suspend), which is unchanged. Every other queue (the agents'
stream buffers) is emptied on every resume, as faust expects: the last resume follows the seek of the
stream partitions to their committed offsets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mode.utils.queues import FlowControlEvent


class ChangelogKeepingFlowControl(FlowControlEvent):
    """``FlowControlEvent`` whose resumes while flowing leave the changelog queue alone."""

    def __init__(self, changelog_queue: Callable[[], Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._changelog_queue = changelog_queue

    def resume(self) -> None:
        """Resume production into the queues; empty them, the changelog queue only after a suspension."""
        was_suspended = not self.is_active()
        self._suspend.clear()
        self._resume.set()
        kept = None if was_suspended else self._changelog_queue()
        for queue in list(self._queues):
            if queue is not kept:
                queue.clear()
