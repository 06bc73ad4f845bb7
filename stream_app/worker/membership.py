"""How a replica takes part in the consumer group: its timings, its identity, and how it leaves.

faust-streaming 0.15.3 on aiokafka 0.14 is used as it is, with the changes below (pyproject pins
both, since most of them touch private attributes):

* **Static membership.** The replica name is the group instance id (KIP-345): a replica back within
  ``worker.session_timeout`` gets its partitions again and nobody else rebalances.
* **Leaving on a stop anyway, and first.** aiokafka never sends LeaveGroup for a static member
  (``GroupCoordinator._maybe_leave_group``), so a stopped replica's partitions would wait for the
  session timeout. The instance id is cleared, and aiokafka then sends the LeaveGroup (v0/v1, by
  member id) that the broker honours: the partitions move at once. A stop leaves as soon as its
  partitions are handed over and nothing reads the consumer any more (`leave_group`,
  `MemberApp._stop_consumer`), before faust closes the tables and the agents (faust would send it
  only when its consumer closes, last but the producer: 0.6-1.0 s later on a loaded machine).
* **No idle second after a rebalance.** With every partition paused (while the tables are restored)
  faust's fetcher sleeps a whole second before it looks again; here it looks every 50 ms.
* **No idle second at start.** faust's table manager sleeps a second before it registers the tables
  (for tables defined while the app starts), and the consumer subscribes, so joins the group, only
  after that. The worker defines every table before it starts: `PromptTableManager` registers them at
  once, and every start, restart after a crash and scale-out joins a second sooner.
* **A short fetch long-poll.** faust hard-codes ``fetch_max_wait_ms=1500``; requests on a connection
  are answered in order, so every ListOffsets of a rebalance with standby replicas waited behind it
  (1.46 s measured, 0.02 s at 100 ms).
* **Commits only where the worker's acknowledgements are.** After a rebalance that a partition stays
  through, faust seeks it back to its committed offset while records fetched before still arrive; its
  fetcher takes the jump for a hole in the log and fills it as acknowledged (``Consumer._add_gap``),
  so it would commit past records still in flight, and a later owner would never read them (seen as
  ``lost_chunks`` gaps in `bench failover`). For the partitions the worker reads, the offset to commit
  is the worker's own: its oldest record not yet acknowledged (`CommitPosition`).
* **Standby records kept through the recovery.** mode's flow control empties faust's changelog queue
  on every resume, and faust's recovery resumes again after the standby changelogs started: records
  fetched in between were dropped while the position moved past them (`stream_app.worker.flow_control`).
* **Every fetched record handed on.** A fetch takes records only of the partitions active when it
  starts, and hands on all of them (`FetchScope`): with faust's live set, a recovery that paused
  the last active partition while a fetch waited made it take every partition's records, and the
  standby changelogs' records just sought back to were dropped.
* **Moves undone rather than new ones.** A replica above its share gives up the partitions it took
  over most recently first, so a returning replica gets back what moved because it left, and
  streams that never moved stay put (`stream_app.worker.assignment`).

What cannot be done with these libraries is in docs/operations.md ("Failover"): no cooperative
rebalancing, no detection of a dead member before its session expires.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import faust
from aiokafka.errors import KafkaError, NoError, UnknownMemberIdError, for_code
from aiokafka.protocol.group import LeaveGroupRequest
from faust.exceptions import ConsumerNotStarted
from faust.tables import TableManager
from faust.transport.drivers import aiokafka as faust_aiokafka

from stream_app.config.settings import WorkerSettings
from stream_app.config.worker_rules import check_group_timings
from stream_app.worker.flow_control import QueueKeepingFlowControl

log = logging.getLogger(__name__)

LEAVE_TIMEOUT = 5.0  # s; how long a stop waits for the broker to answer its LeaveGroup
LEAVE_RETRY = 0.1  # s; between LeaveGroup tries (a coordinator lost or moving)
MIN_REQUEST_TIMEOUT = 30.0  # s; faust's 90 s default only delays noticing a hung connection
IDLE_FETCH_WAIT = 0.05  # s; how often a consumer with every partition paused looks for a resumed one
FETCH_WAIT = 0.1  # s; the longest a fetch waits for records of its partitions (faust: 1 s)


@dataclass(frozen=True)
class GroupTimings:
    """The consumer group's timings, all in seconds (see docs/operations.md for the trade-offs)."""

    session_timeout: float
    heartbeat_interval: float
    rebalance_timeout: float
    request_timeout: float
    fetch_max_wait: float

    @classmethod
    def from_settings(cls, worker: WorkerSettings) -> GroupTimings:
        """Derive the timings from ``[worker]``; refuse combinations the broker or faust would refuse later."""
        check_group_timings(worker)  # also checked when the settings load
        return cls(
            session_timeout=worker.session_timeout,
            heartbeat_interval=worker.heartbeat_interval,
            rebalance_timeout=worker.rebalance_timeout,
            request_timeout=max(MIN_REQUEST_TIMEOUT, worker.session_timeout),  # faust requires >= session
            fetch_max_wait=worker.fetch_max_wait,
        )

    def faust_options(self) -> dict[str, Any]:
        """Return the ``faust.App`` keyword arguments these timings set."""
        return {
            "broker_session_timeout": self.session_timeout,
            "broker_heartbeat_interval": self.heartbeat_interval,
            "broker_rebalance_timeout": self.rebalance_timeout,
            "broker_request_timeout": self.request_timeout,
        }


def fit_session_timeout(worker: WorkerSettings, broker_min: float | None) -> WorkerSettings:
    """Return ``worker`` with a session timeout the brokers accept: at least their minimum.

    ``broker_min`` is the brokers' ``group.min.session.timeout.ms`` in seconds (None: unknown, the
    setting is kept). The heartbeat stays as set: a longer session only loosens its bound.
    """
    if broker_min is None or worker.session_timeout >= broker_min:
        return worker
    log.warning(
        "worker.session_timeout %g s is below the brokers' group.min.session.timeout.ms (%g s): using %g s; "
        "a killed replica's streams move about %g s later than they could (docs/operations.md, Failover)",
        worker.session_timeout,
        broker_min,
        broker_min,
        broker_min - worker.session_timeout,
    )
    return replace(worker, session_timeout=broker_min)


def group_instance_id(worker: WorkerSettings, replica: str) -> str | None:
    """Return the replica's static group instance id (its stable name), or None for a dynamic member."""
    return replica if worker.static_membership else None


def leave_on_close(consumer: Any) -> None:
    """Make the aiokafka consumer send LeaveGroup when it closes, even as a static member."""
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is not None and getattr(coordinator, "_group_instance_id", None) is not None:
        coordinator._group_instance_id = None


async def leave_group(consumer: Any, timeout: float = LEAVE_TIMEOUT) -> bool:
    """Leave the group now and for good: LeaveGroup sent (a static member too), no rejoin after it.

    ``consumer`` is the aiokafka consumer, called from its own loop. It is unsubscribed as
    ``AIOKafkaConsumer.unsubscribe`` does (its coordinator then waits for a new subscription instead of
    rejoining, and no rebalance callback runs), but the LeaveGroup is sent here rather than in
    aiokafka's fire-and-forget task, which forgets the member whether the broker answered or not and
    never looks for a coordinator it lost. Returns whether it left within ``timeout``; if not, the
    member is kept and the consumer's close sends LeaveGroup once more.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None:  # never started: not a member
        return True
    leave_on_close(consumer)
    consumer._subscription.unsubscribe()
    consumer._client.set_topics([])
    left = True
    if coordinator.generation > 0:  # in a generation: the broker knows this member
        try:
            await asyncio.wait_for(_send_leave(coordinator), timeout)
        except TimeoutError:
            log.warning("LeaveGroup not answered within %g s: the consumer's close sends it again", timeout)
            left = False
        else:
            coordinator.reset_generation()
    # aiokafka heartbeats until it rejoins or closes; a heartbeat of the member that left is refused
    # ("member_id was not recognized; resetting and re-joining group", though it rejoins nothing)
    await coordinator._stop_heartbeat_task()
    return left


async def _send_leave(coordinator: Any) -> None:
    """Send LeaveGroup until the coordinator answers it (the caller bounds the time).

    A lost coordinator is looked up again; an answer that the member is unknown counts as left.
    """
    while True:
        try:
            await coordinator.ensure_coordinator_known()
            response = await coordinator._send_req(LeaveGroupRequest(coordinator.group_id, coordinator.member_id))
        except KafkaError as error:
            log.info("LeaveGroup: %r; trying again", error)
        else:
            answer = for_code(response.error_code)
            if answer in (NoError, UnknownMemberIdError):
                return
            log.info("LeaveGroup answered %s; trying again", answer.__name__)
        await asyncio.sleep(LEAVE_RETRY)


# (topic partition) -> (whether the worker decides this partition's commits, the offset it may commit)
CommitPosition = Callable[[Any], tuple[bool, int | None]]


def new_commit_offset(consumer: Any, tp: Any, faust_offset: Callable[[Any], int | None]) -> int | None:
    """Return the offset faust may commit for ``tp``: the worker's where it decides, else faust's own."""
    position: CommitPosition | None = getattr(consumer.app, "commit_position", None)
    if position is not None:
        decides, offset = position(tp)
        if decides:
            consumer._acked[tp].clear()  # faust's own bookkeeping of this partition is not used
            consumer._acked_index[tp].clear()
            return offset
    return faust_offset(tp)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """faust's consumer thread with the fetch long-poll of the app's timings, leaving the group on stop."""

    left_group = False  # once left, faust's conductor subscribing again (a topic set change) is ignored

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        timings: GroupTimings | None = getattr(self.app, "group_timings", None)
        if timings is not None:
            consumer._fetch_max_wait_ms = int(timings.fetch_max_wait * 1000)  # read by AIOKafkaConsumer.start()
        return consumer

    async def on_thread_stop(self) -> None:
        if self._consumer is not None:
            leave_on_close(self._consumer)
        await super().on_thread_stop()

    async def subscribe(self, topics: Any) -> None:
        if self.left_group:
            return
        await super().subscribe(topics)

    async def leave_group(self) -> bool:
        """Leave the group from the consumer's own thread (`leave_group`); True if there was none to leave."""
        if self._consumer is None or self.should_stop:  # not started, or stopping: its close leaves
            return True
        self.left_group = True
        return bool(await self.call_thread(self._leave_group))

    async def _leave_group(self) -> bool:
        return True if self._consumer is None else await leave_group(self._consumer)


class WorkerReadOffsets(dict[Any, int | None]):
    """faust's read offsets (below which it drops records), kept only for the partitions not listed below.

    faust raises a partition's read offset with every record it hands on and drops every record
    fetched below it, also after a seek back. A record handed on before the seek and then emptied
    from its queue (a rebalance's flow control, `stream_app.worker.flow_control`) leaves the offset
    above the records the seek fetches again, and they are lost:

    * the input partitions, whose records the worker takes in offset order itself, once each
      (`stream_app.worker.ordering`);
    * the tables' changelog partitions: faust's recovery drops the records it has seen
      (its offsets per partition) and `stream_app.worker.local_store.GuardedStore` those already in
      the files. On 2026-12-05 standby copies were seen to skip from their files' offset to the
      changelog's end after a rebalance (docs/operations.md, "Standby copies that skipped records");
      this offset was one way records were dropped like that, `FetchScope` explains the rest.
    """

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.app = app

    def _ours(self, tp: Any) -> bool:
        position: CommitPosition | None = getattr(self.app, "commit_position", None)
        if position is not None and position(tp)[0]:
            return True
        tables = getattr(self.app, "tables", None)
        return tables is not None and tp.topic in tables.changelog_topics

    def __missing__(self, tp: Any) -> int | None:
        return None

    def __getitem__(self, tp: Any) -> int | None:
        return None if self._ours(tp) else super().__getitem__(tp)

    def __setitem__(self, tp: Any, offset: int | None) -> None:
        if not self._ours(tp):
            super().__setitem__(tp, offset)


class _Consumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_offset = WorkerReadOffsets(self.app)

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _new_offset(self, tp: Any) -> int | None:
        return new_commit_offset(self, tp, super()._new_offset)

    async def leave_group(self) -> bool:
        """Leave the consumer group now, before the rest of the stop (`leave_group`)."""
        thread = self._thread
        return True if not isinstance(thread, _ConsumerThread) else await thread.leave_group()

    async def _wait_next_records(self, timeout: float) -> Any:
        """Fetch the records of the partitions active now, and hand on every one of them (`FetchScope`).

        With every partition paused, look again after `IDLE_FETCH_WAIT`: faust sleeps a whole second
        there, and every partition is paused while a rebalance restores the tables, so a partition
        resumed just after that sleep began waited up to a second more to be read. A fetch waits at
        most `FETCH_WAIT` for records of its partitions, so a partition resumed meanwhile is read
        within that.
        """
        if self.app.client_only:
            return await super()._wait_next_records(timeout)
        if not self.flow_active:
            await self.wait(self.can_resume_flow)  # type: ignore[arg-type]  # an asyncio.Event, as in faust
        try:
            self.not_waiting_next_records.set()
            scope = FetchScope.start(self._get_active_partitions(), self.app.consumer_generation_id)
            if not scope.partitions:
                await self.sleep(IDLE_FETCH_WAIT)
                return {}, scope.partitions
            records = await self._getmany(
                active_partitions=scope.partitions,  # type: ignore[arg-type]
                timeout=min(timeout, FETCH_WAIT),
            )
            return records, scope.handed_on(self._get_active_partitions(), self.app.consumer_generation_id)
        finally:
            self.not_waiting_next_records.set()


@dataclass(frozen=True)
class FetchScope:
    """The partitions one fetch takes records from, and which of its records are handed on.

    faust hands the fetcher its live set of active partitions, which its recovery empties and fills
    while the fetch waits, and drops every fetched record of a partition not in the set when the
    record is handed on. Both lost records whose position had already moved past them: aiokafka's
    ``Fetcher.fetched_records`` takes an empty set for *every* partition, and a rebalance's recovery
    empties it between pausing the active changelogs and resuming the standby ones, just after seeking
    the standbys back to their files' offsets: the records fetched from there (up to the changelog's
    end at that moment) were taken and dropped, and the standby copies went on from the end without
    them (docs/operations.md, "Standby copies that skipped records").

    So a fetch takes records only of a copy of the set made when it starts, never empty while it
    waits, and hands on every record it took: records of a partition paused meanwhile (the active
    changelogs once restored) are still right to apply. Unless a rebalance happened while it waited
    (aiokafka holds a fetch until the new assignment is set): then only the partitions active now are
    handed on, since the input partitions are paused until the tables are restored, and faust's
    recovery seeks every partition back after it, so what is dropped is read again.
    """

    partitions: frozenset[Any]
    generation: int

    @classmethod
    def start(cls, active: Any, generation: int) -> FetchScope:
        """Return the scope of a fetch starting now, with faust's active partitions and group generation."""
        return cls(frozenset(active), generation)

    def handed_on(self, active: Any, generation: int) -> frozenset[Any]:
        """Return the partitions whose fetched records are handed on, given the state when the fetch returned."""
        if generation == self.generation:
            return self.partitions
        return self.partitions & frozenset(active)


class PromptTableManager(TableManager):
    """faust's table manager without the second it sleeps before registering the tables (module docstring)."""

    async def on_start(self) -> None:
        """Register the tables' changelogs and start the recovery, as faust does after its sleep."""
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class MemberApp(faust.App):
    """A faust app with the group membership above, the worker's commit positions, and a stop hook.

    ``before_stop`` runs at the start of `on_stop`, while the consumer, the producer, the tables and
    the agents are all still up (faust stops its children only after ``on_stop``): the one place to
    hand partitions over cleanly (`stream_app.worker.handover`).
    """

    group_timings: GroupTimings | None = None
    before_stop: Any = None  # an async callable of no arguments
    commit_position: CommitPosition | None = None

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)

    @cached_property
    def flow_control(self) -> QueueKeepingFlowControl:
        """The flow control of faust, minus the resumes that dropped fetched records (standby and input)."""
        return QueueKeepingFlowControl(loop=self.loop)

    async def on_stop(self) -> None:
        """Run ``before_stop``, then faust's own stop, which leaves the group before closing the tables."""
        hook = self.before_stop
        if hook is not None:
            try:
                await hook()
            except Exception:  # the stop goes on: the next owner re-reads whatever was not committed
                log.exception("handing the partitions over failed; stopping anyway")
        await super().on_stop()

    async def _stop_consumer(self) -> None:
        """Stop reading, leave the group, close the tables: faust's `App._stop_consumer` with the leave added.

        faust revokes the tables' partitions, stops the flow and the fetcher, and closes the tables; it
        leaves the group only when its consumer closes, after the agents. Here the group is left before
        the tables close, once the fetcher and the tables' recovery (which seeks and reads the consumer)
        have stopped (the recovery first: a restore going on resumes the flow and starts the fetcher).
        """
        consumer = self._consumer  # not `self.consumer`: a stop before the start creates none
        if consumer is None:
            return
        try:
            assignment = consumer.assignment()
        except ConsumerNotStarted:
            return
        recovery = getattr(self.tables, "_recovery", None)
        if recovery is not None:  # first: a restore resumes the flow and restarts the fetcher as it goes on
            await recovery.stop()
        if assignment:
            self.tables.on_partitions_revoked(assignment)
            consumer.stop_flow()
            self.flow_control.suspend()
            consumer.pause_partitions(assignment)
            self.flow_control.clear()
            await self._stop_fetcher()
            await self._consumer_wait_empty(consumer, self.log)
        if isinstance(consumer, _Consumer):
            await self._leave_group(consumer)
        if assignment:
            await self.tables.stop()

    async def _leave_group(self, consumer: _Consumer) -> None:
        started = time.monotonic()
        try:
            left = await asyncio.wait_for(consumer.leave_group(), LEAVE_TIMEOUT + 1.0)
        except Exception as error:  # the consumer's close tries again (it sends LeaveGroup if still a member)
            log.warning("could not leave the consumer group before closing (%r); leaving as the consumer closes", error)
            return
        if left:
            log.info(
                "left the consumer group in %.2f s, before closing the tables and the consumer",
                time.monotonic() - started,
            )
