"""Flow control that keeps the records a replica has fetched: standby changelog records and input records.

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

The same last call emptied the agents' buffers: the input records the fetcher had delivered since the
stream partitions were resumed, a moment before, some of them fetched after the seek. Their position
had moved past them too, so a partition whose recorder sent nothing more stalled: the reader waited
for records the consumer would never fetch again (seen in `tests/integration/worker/test_failover.py`:
the survivor took over the killed replica's partition at its committed offset and never read a record
of the stream's second half, or read the first one and none after it).

Here a resume empties the queues only when flow was suspended before it. What protects a replica from
records of partitions it no longer owns is the explicit ``flow_control.clear()`` faust calls on every
revocation (after its suspend), which is unchanged. A record an agent's buffer keeps from before the
seek is delivered once more after it; the reader hands each offset on once, in order
(`stream_app.worker.ordering`), so the copy is dropped there.
"""

from __future__ import annotations

from mode.utils.queues import FlowControlEvent


class QueueKeepingFlowControl(FlowControlEvent):
    """``FlowControlEvent`` whose resumes while flowing leave every queue alone."""

    def resume(self) -> None:
        """Resume production into the queues; empty them only if flow was suspended."""
        was_suspended = not self.is_active()
        self._suspend.clear()
        self._resume.set()
        if was_suspended:
            for queue in list(self._queues):
                queue.clear()
