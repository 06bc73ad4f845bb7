"""Group timings, the static identity, and leaving the group on a stop even as a static member."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from aiokafka.protocol.group import LeaveGroupRequest_v1
from faust.transport.utils import DefaultSchedulingStrategy
from faust.types import TP

from stream_app.config import Settings
from stream_app.config.exceptions import ConfigError
from stream_app.worker.app import create_worker_app
from stream_app.worker.membership import (
    FETCH_WAIT,
    IDLE_FETCH_WAIT,
    MIN_REQUEST_TIMEOUT,
    GroupTimings,
    PromptTableManager,
    WorkerReadOffsets,
    _Consumer,
    fit_session_timeout,
    group_instance_id,
    leave_group,
    leave_on_close,
    new_commit_offset,
)


def test_the_default_timings_fit_the_broker_and_faust(settings: Settings) -> None:
    timings = GroupTimings.from_settings(settings.worker)
    assert timings.session_timeout == 6.0  # the brokers' default group.min.session.timeout.ms
    assert timings.heartbeat_interval * 3 <= timings.session_timeout
    assert timings.request_timeout >= timings.session_timeout  # faust refuses to start otherwise
    options = timings.faust_options()
    assert options["broker_session_timeout"] == timings.session_timeout
    assert options["broker_rebalance_timeout"] == timings.rebalance_timeout


def test_a_heartbeat_too_slow_for_the_session_is_refused(settings: Settings) -> None:
    worker = dataclasses.replace(settings.worker, session_timeout=6.0, heartbeat_interval=3.0)
    with pytest.raises(ConfigError, match="heartbeat_interval"):
        GroupTimings.from_settings(worker)


def test_a_rebalance_timeout_shorter_than_the_drain_is_refused(settings: Settings) -> None:
    worker = dataclasses.replace(settings.worker, rebalance_timeout=2.0, drain_timeout=5.0)
    with pytest.raises(ConfigError, match="rebalance_timeout"):
        GroupTimings.from_settings(worker)


def test_a_long_session_raises_the_request_timeout_with_it(settings: Settings) -> None:
    worker = dataclasses.replace(settings.worker, session_timeout=45.0)
    assert GroupTimings.from_settings(worker).request_timeout == 45.0
    assert GroupTimings.from_settings(settings.worker).request_timeout == MIN_REQUEST_TIMEOUT


def test_the_replica_name_is_the_static_identity_unless_turned_off(settings: Settings) -> None:
    assert group_instance_id(settings.worker, "stream-app-worker-1") == "stream-app-worker-1"
    dynamic = dataclasses.replace(settings.worker, static_membership=False)
    assert group_instance_id(dynamic, "stream-app-worker-1") is None


def test_a_static_member_is_made_to_leave_when_it_closes() -> None:
    coordinator = SimpleNamespace(_group_instance_id="stream-app-worker-1")
    leave_on_close(SimpleNamespace(_coordinator=coordinator))
    assert coordinator._group_instance_id is None  # aiokafka then sends LeaveGroup on close
    leave_on_close(SimpleNamespace(_coordinator=None))  # not started yet: nothing to do


class StandInCoordinator:
    """aiokafka's `GroupCoordinator` as `leave_group` meets it; the broker answers with ``answers`` in turn."""

    group_id = "stream-app"
    member_id = "r1-6f1c"

    def __init__(self, instance_id: str | None, *answers: str, generation: int = 7) -> None:
        self._group_instance_id = instance_id
        self.generation = generation
        self.answers = list(answers) or ["ok"]  # ok, unknown member, not coordinator, error (raised), none
        self.sent: list[tuple[str, str, str | None]] = []  # (request, member id, instance id when sent)
        self.lookups = 0
        self.heartbeating = True

    async def ensure_coordinator_known(self) -> None:
        self.lookups += 1

    async def _send_req(self, request: Any) -> object:
        struct = request.build(LeaveGroupRequest_v1)  # what goes on the wire
        self.sent.append((type(struct).__name__, struct.member_id, self._group_instance_id))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if answer == "error":
            raise KafkaConnectionError("broker gone")
        if answer == "none":
            await asyncio.Event().wait()
        codes = {"ok": 0, "unknown member": 25, "not coordinator": 16}
        return SimpleNamespace(error_code=codes[answer])

    def reset_generation(self) -> None:
        self.generation, self.member_id = -1, ""

    async def _stop_heartbeat_task(self) -> None:
        self.heartbeating = False


class StandInConsumer:
    def __init__(self, coordinator: StandInCoordinator | None) -> None:
        self._coordinator = coordinator
        self.subscribed = True
        self.topics: list[str] | None = ["chunks"]
        self._subscription = SimpleNamespace(unsubscribe=self._unsubscribe)
        self._client = SimpleNamespace(set_topics=self._set_topics)

    def _unsubscribe(self) -> None:  # aiokafka's coordinator then waits for a subscription: no rejoin
        self.subscribed = False

    def _set_topics(self, topics: list[str]) -> None:
        self.topics = topics


async def test_a_stop_leaves_the_group_at_once_as_a_static_member_too_and_for_good() -> None:
    coordinator = StandInCoordinator("stream-app-worker-1")
    consumer = StandInConsumer(coordinator)
    assert await leave_group(consumer, timeout=1.0)
    assert coordinator.sent == [("LeaveGroupRequest_v1", "r1-6f1c", None)]  # by member id, instance id cleared
    assert coordinator.generation == -1  # the broker answered: the close sends nothing more
    assert not consumer.subscribed and consumer.topics == []  # aiokafka rejoins a subscribed member; not this one
    assert not coordinator.heartbeating  # a heartbeat after the leave is refused by the broker


@pytest.mark.parametrize("answers", [("error", "ok"), ("not coordinator", "ok"), ("unknown member",)])
async def test_a_leave_is_sent_again_until_the_coordinator_answers_that_the_member_is_gone(
    answers: tuple[str, ...],
) -> None:
    coordinator = StandInCoordinator(None, *answers)
    assert await leave_group(StandInConsumer(coordinator), timeout=2.0)
    assert len(coordinator.sent) == len(answers) and coordinator.lookups == len(answers)  # a lost one looked up
    assert coordinator.generation == -1


@pytest.mark.parametrize("answer", ["error", "not coordinator", "none"])
async def test_a_leave_never_answered_in_time_keeps_the_member_for_the_close(answer: str) -> None:
    coordinator = StandInCoordinator(None, answer)
    consumer = StandInConsumer(coordinator)
    assert not await leave_group(consumer, timeout=0.3)
    assert coordinator.sent and not consumer.subscribed and not coordinator.heartbeating
    assert coordinator.generation == 7  # still a member: aiokafka's close sends LeaveGroup again


async def test_a_consumer_in_no_generation_or_never_started_has_nothing_to_leave() -> None:
    coordinator = StandInCoordinator(None, generation=-1)
    consumer = StandInConsumer(coordinator)
    assert await leave_group(consumer, timeout=0.05)
    assert coordinator.sent == [] and not consumer.subscribed
    assert await leave_group(StandInConsumer(None), timeout=0.05)


def test_the_worker_decides_the_commits_of_its_partitions_and_faust_of_the_rest() -> None:
    positions = {"chunks": (True, 121), "elsewhere": (False, None)}
    acked = {"chunks": [121, 122, 126], "elsewhere": [5]}  # faust's list, polluted by a filled "gap"
    consumer = SimpleNamespace(
        app=SimpleNamespace(commit_position=lambda tp: positions[tp]),
        _acked=acked,
        _acked_index={"chunks": {121, 122, 126}, "elsewhere": {5}},
    )
    assert new_commit_offset(consumer, "chunks", lambda tp: 127) == 121  # not past the record in flight
    assert acked["chunks"] == [] and consumer._acked_index["chunks"] == set()
    assert new_commit_offset(consumer, "elsewhere", lambda tp: 6) == 6 and acked["elsewhere"] == [5]
    positions["chunks"] = (True, None)  # owned but nothing acknowledged yet (or closed): nothing to commit
    assert new_commit_offset(consumer, "chunks", lambda tp: 127) is None


def test_faust_keeps_no_read_offset_for_the_input_and_changelog_partitions() -> None:
    app = SimpleNamespace(
        commit_position=lambda tp: (tp.topic == "input", None),
        tables=SimpleNamespace(changelog_topics={"app-streams-changelog"}),
    )
    offsets = WorkerReadOffsets(app)
    taken, changelog, other = TP("input", 0), TP("app-streams-changelog", 0), TP("other", 0)
    offsets[taken] = 1222  # a record fetched before a seek: faust would drop the re-read 1219-1221
    offsets[changelog] = 369  # a standby fetched to its end before faust sought it back to offset 113
    offsets[other] = 40
    assert offsets[taken] is None and offsets[changelog] is None and offsets[other] == 40
    assert offsets[TP("unknown", 0)] is None  # faust's defaultdict(lambda: None)
    assert offsets.pop(other, None) == 40 and offsets.pop(taken, None) is None


async def test_with_every_partition_paused_the_fetcher_looks_again_within_50_ms_not_a_second() -> None:
    consumer = object.__new__(_Consumer)  # only the attributes the fetch wait reads
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    consumer.__dict__.update(
        flow_active=True,
        app=SimpleNamespace(client_only=False, consumer_generation_id=7),
        _active_partitions=set(),  # every assigned partition paused, as while a rebalance restores the tables
        _paused_partitions=set(),
        not_waiting_next_records=asyncio.Event(),
        sleep=sleep,
    )
    assert await consumer._wait_next_records(1.0) == ({}, set())
    assert slept == [IDLE_FETCH_WAIT] and IDLE_FETCH_WAIT <= 0.05
    assert consumer.not_waiting_next_records.is_set()  # faust's shutdown waits for this


async def test_the_worker_registers_its_tables_at_once_so_it_joins_the_group_a_second_sooner(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = dataclasses.replace(settings.worker, data_dir=str(tmp_path))
    app = create_worker_app(dataclasses.replace(settings, worker=worker), replica="r1").app  # connects nowhere
    manager = app.tables
    assert isinstance(manager, PromptTableManager)
    slept: list[float] = []
    started: list[object] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def start_recovery() -> None:
        started.append(manager.recovery)

    def table_start(name: str) -> Callable[[], Awaitable[None]]:
        async def maybe_start() -> None:
            started.append(name)

        return maybe_start

    monkeypatch.setattr(manager, "sleep", sleep)
    monkeypatch.setattr(manager.recovery, "start", start_recovery)
    for table in manager.values():  # each would create its changelog topic on the broker
        monkeypatch.setattr(table, "maybe_start", table_start(table.name))
    monkeypatch.setattr(app.consumer, "assignment", set)  # nothing assigned before the group is joined
    await manager.on_start()
    # faust's manager sleeps 1 s first; the conductor subscribes (joins the group) once this event is set
    assert slept == [] and manager._tables_registered.is_set()
    assert started == ["streams", "audio", manager.recovery]
    assert {table.name for table in manager.values()} == {"streams", "audio"}
    assert {topic.get_topic_name() for topic in manager._channels.values()} == set(manager.changelog_topics)


def test_a_session_below_the_brokers_minimum_is_raised_to_it(settings: Settings) -> None:
    worker = dataclasses.replace(settings.worker, session_timeout=3.0)
    assert fit_session_timeout(worker, 6.0).session_timeout == 6.0  # a stock broker refuses less
    assert fit_session_timeout(worker, 2.0) == worker  # a broker that allows it
    assert fit_session_timeout(worker, None) == worker  # unknown: the setting stands
    longer = dataclasses.replace(settings.worker, session_timeout=45.0)
    assert fit_session_timeout(longer, 6.0) == longer


def fetching_consumer(
    active: set[TP], paused: set[TP], buffered: dict[TP, list[SimpleNamespace]], during_wait: Any
) -> tuple[_Consumer, list[tuple[TP, int]], list[float]]:
    """A `_Consumer` with faust's own ``getmany`` over a fetcher that follows aiokafka's rules.

    ``during_wait(consumer)`` runs while the fetch waits (faust's recovery, a rebalance). The fetcher
    returns the buffered records of the partitions asked for, or of every partition when the set is
    empty (aiokafka's ``Fetcher.fetched_records``); the records it returns are *taken*: their position
    has moved past them.
    """
    taken: list[tuple[TP, int]] = []
    waits: list[float] = []
    consumer = object.__new__(_Consumer)  # only the attributes a fetch reads

    async def getmany(active_partitions: frozenset[TP], timeout: float) -> dict[TP, list[SimpleNamespace]]:
        waits.append(timeout)
        during_wait(consumer)
        records = {tp: batch for tp, batch in buffered.items() if not active_partitions or tp in active_partitions}
        taken.extend((tp, record.offset) for tp, batch in records.items() for record in batch)
        return records

    consumer.__dict__.update(
        flow_active=True,
        app=SimpleNamespace(
            client_only=False, consumer_generation_id=7, monitor=SimpleNamespace(track_tp_end_offset=lambda *_: None)
        ),
        _active_partitions=active,
        _paused_partitions=paused,
        _buffered_partitions=set(),
        not_waiting_next_records=asyncio.Event(),
        scheduler=DefaultSchedulingStrategy(),
        _getmany=getmany,
        highwater=lambda tp: 0,
        _to_message=lambda tp, record: record,
    )
    consumer._stopped, consumer._crashed = asyncio.Event(), asyncio.Event()  # mode: should_stop
    return consumer, taken, waits


async def handed_on(consumer: _Consumer) -> list[tuple[TP, int]]:
    return [(tp, message.offset) async for tp, message in consumer.getmany(timeout=1.0)]


async def test_every_record_taken_from_the_fetcher_is_handed_on_though_recovery_pauses_meanwhile() -> None:
    """The skip of 2026-12-05: faust's recovery paused the active changelogs while a fetch waited.

    aiokafka's ``fetched_records`` reads an empty partition set as every partition, so the fetch took
    the standby changelog's records just sought back to (its position moved past them), and faust then
    dropped them as not active: the standby copy went on from the changelog's end without them.
    """
    active_changelog, standby_changelog = TP("app-audio-changelog", 4), TP("app-audio-changelog", 7)
    buffered = {standby_changelog: [SimpleNamespace(offset=offset) for offset in range(761, 833)]}
    consumer, taken, waits = fetching_consumer(
        {active_changelog},  # the active changelog being restored; the standby one paused
        {standby_changelog},
        buffered,
        lambda consumer: consumer.pause_partitions({active_changelog}),  # "Done reading from changelog topics"
    )
    assert await handed_on(consumer) == taken
    consumer.resume_partitions({standby_changelog})  # recovery: "Starting standby partitions..."
    assert await handed_on(consumer) == taken == [(standby_changelog, offset) for offset in range(761, 833)]
    assert max(waits) <= FETCH_WAIT <= 0.1  # a partition resumed meanwhile waits for no long fetch


async def test_a_fetch_that_spans_a_rebalance_hands_on_only_what_is_active_after_it() -> None:
    """An input partition kept through a rebalance is paused until the tables are restored.

    aiokafka holds a fetch until the new assignment is set and then fetches the kept partition from its
    committed offset; handing those records on would start streams on tables not yet restored. faust's
    recovery seeks the partition back to its committed offset once they are, so nothing is lost.
    """
    kept, standby_changelog = TP("app-chunks", 3), TP("app-audio-changelog", 3)
    buffered = {kept: [SimpleNamespace(offset=1231)], standby_changelog: [SimpleNamespace(offset=90)]}

    def rebalance(consumer: _Consumer) -> None:
        consumer.app.consumer_generation_id = 8
        consumer.pause_partitions({kept, standby_changelog})  # faust pauses the whole new assignment
        consumer.resume_partitions({standby_changelog})  # and its recovery resumes the changelogs first

    consumer, taken, _ = fetching_consumer({kept, standby_changelog}, set(), buffered, rebalance)
    assert await handed_on(consumer) == [(standby_changelog, 90)]
    assert (kept, 1231) in taken  # taken, not handed on: read again from the committed offset
