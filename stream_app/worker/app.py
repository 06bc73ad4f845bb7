"""The faust application: topics, tables, the reader of each partition, and the worker's timer.

One agent actor per partition (``isolated_partitions``) reads its records in order with faust's
acknowledgements off (``noack``) and hands each to the `StreamProcessor`, which never waits for
inference: windows of every stream go to the inference pool together and batch there. Each record
is acknowledged, strictly in offset order, only when its effects are durable (`stream_app.worker.acks`),
and the group commits the oldest record not yet acknowledged (`stream_app.worker.membership`). Records
are taken in offset order and once each, also when faust delivers some again or early after a seek
(`stream_app.worker.ordering`). At a rebalance only the partitions that change owner are closed: their
work is cancelled and their records are read again by the next owner, from a warm standby copy of the
tables where one exists. On a stop the replica hands everything over at once
(`stream_app.worker.handover`) and leaves the group (`stream_app.worker.membership`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any

import faust
import psutil
from faust.types import TP

from stream_app.clients.faust_options import faust_broker_options, faust_web_options
from stream_app.config import Settings, expand_path
from stream_app.config.exceptions import ConfigError
from stream_app.inference.engine import InferenceEngine
from stream_app.inference.vad import shared_detector
from stream_app.metrics import worker_metrics as m
from stream_app.metrics.health import Health
from stream_app.metrics.lag import ConsumerLagGauges, PartitionSample
from stream_app.worker.acks import PartitionAcks
from stream_app.worker.assignment import RecentFirstAssignor
from stream_app.worker.catch_up import KafkaChangelogReader
from stream_app.worker.exceptions import Fenced
from stream_app.worker.faults import FaultInjector, parse_window_crashes, parse_window_failures
from stream_app.worker.fencing import OwnerEpochs
from stream_app.worker.handover import hand_over, moved
from stream_app.worker.local_store import GUARD_OPTION, GuardedTable, StoreGuard
from stream_app.worker.log_limits import BurstFilter, limit_library_logs
from stream_app.worker.membership import GroupTimings, MemberApp, PromptTableManager, group_instance_id
from stream_app.worker.outputs import DeliveryMonitor, Outputs
from stream_app.worker.partition_ends import partition_end
from stream_app.worker.partitions import PartitionState
from stream_app.worker.processor import InputRecord, ProcessorLimits, StreamProcessor
from stream_app.worker.profile import live_config_for
from stream_app.worker.records import encode_fenced
from stream_app.worker.retry import Backoff
from stream_app.worker.scope import PartitionScope
from stream_app.worker.stalls import ack_head_fault
from stream_app.worker.steps import StepLimits, StepRunner, Transcribe
from stream_app.worker.store import StreamStore
from stream_app.worker.tables import ChangelogTable

log = logging.getLogger(__name__)

TIMER_INTERVAL = 0.25
LAG_INTERVAL = 2.0
READER_IDLE_REREAD = 10.0  # s: an idle reader behind the log's end reads it again (PartitionState.missing_tail)
# Every table record stays far below this (pages of 64 kB, a header under one page of audio, held
# chunks under 4 MB: the chunk size cap at 8 kHz); the changelog topics and the producer allow 8 MB.
MAX_RECORD_BYTES = 8 * 1024 * 1024
# How long a compacted changelog keeps a deletion (tombstone) after compaction reaches it. A replica's
# local files resume from their changelog offset, so a deletion made while its volume sat unused is
# seen only while its tombstone lasts: files last in step with the changelog longer ago than this are
# dropped and restored afresh (`GuardedStore`). Kafka's default is one day; a week lets a replica scaled
# in on Friday come back on Monday with its files (docs/operations.md).
DELETE_RETENTION_MS = 7 * 24 * 3600 * 1000
CHANGELOG_TOPIC_CONFIG = {"max.message.bytes": str(MAX_RECORD_BYTES), "delete.retention.ms": str(DELETE_RETENTION_MS)}
CHANGELOG_CONFIG = {"cleanup.policy": "compact", **CHANGELOG_TOPIC_CONFIG}
LOCAL_STATE_MARGIN = 0.9  # local files are trusted for this share of the tombstones' retention (clock skew)
# faust's RocksDB defaults are sized for big servers (64 MB x 3 write buffers and a 2 GB block cache
# per table partition); the tables hold only live streams' few seconds of audio.
ROCKSDB_OPTIONS = {
    "write_buffer_size": 4 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "target_file_size_base": 16 * 1024 * 1024,
    "block_cache_size": 8 * 1024 * 1024,
    "block_cache_compressed_size": 0,
}
TABLES = ("streams", "audio")
# Changelog records buffered before they are applied to the local files: faust's default (1,000) would
# hold up to 64 MB of audio pages per table (GBs with held chunks). A standby's buffer is applied when
# full and at every rebalance, so its size is also how far a standby copy may trail.
STANDBY_BUFFER = 16
RECOVERY_BUFFER = 64


def changelog_topics(settings: Settings) -> list[str]:
    """Return the changelog topic of every table, as faust names them (``<app id>-<table>-changelog``)."""
    return [f"{settings.kafka.group_id}-{table}-changelog" for table in TABLES]


def replica_name(settings: Settings, given: str | None = None) -> str:
    """Stable name of this replica: its RocksDB folder, so a restart reuses local state."""
    return given or f"{socket.gethostname()}-{settings.worker.web_port}"


@dataclass
class WorkerApp:
    """The faust app and the pieces the readers and the timer share."""

    app: MemberApp
    settings: Settings
    engine: InferenceEngine
    health: Health
    processor: StreamProcessor
    monitor: DeliveryMonitor
    input_topic: Any
    replica: str


def _raw() -> faust.Schema[bytes, bytes]:
    """Bytes in, bytes out: faust's default JSON serializer would fail on PCM."""
    return faust.Schema(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


def _header_list(headers: Any) -> list[tuple[str, bytes]]:
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers or [])


def create_worker_app(
    settings: Settings,
    *,
    replica: str | None = None,
    engine: InferenceEngine | None = None,
    delete_retention_ms: int = DELETE_RETENTION_MS,
) -> WorkerApp:
    """Build the faust app from the configuration (nothing connects until the worker starts).

    ``delete_retention_ms`` is the changelogs' ``delete.retention.ms`` as the broker has it: local files
    last in step with the changelog longer ago than (most of) that are restored afresh.
    """
    kafka, worker = settings.kafka, settings.worker
    name = replica_name(settings, replica)
    timings = GroupTimings.from_settings(worker)
    datadir = expand_path(worker.data_dir) / kafka.group_id / name  # RocksDB files are per app id
    datadir.mkdir(parents=True, exist_ok=True)
    app = MemberApp(
        kafka.group_id,
        broker=f"kafka://{kafka.bootstrap_servers}",
        **timings.faust_options(),
        consumer_group_instance_id=group_instance_id(worker, name),
        broker_commit_interval=worker.commit_interval,
        store="rocksdb://",
        datadir=str(datadir),
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        producer_acks=-1,
        producer_max_request_size=MAX_RECORD_BYTES,
        consumer_max_fetch_size=MAX_RECORD_BYTES,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,  # a rebalance never waits for records in flight (moved partitions abandon theirs)
        **faust_broker_options(kafka),
        **faust_web_options(settings.worker),  # off unless configured: our own server has /metrics etc.
        table_standby_replicas=worker.standby_replicas,
        loghandlers=[],
        Table=GuardedTable,  # local state holds only what the changelog acknowledged
        TableManager=PromptTableManager,  # no idle second before the group is joined
        PartitionAssignor=RecentFirstAssignor,  # a replica above its share gives up what it took over last
    )
    app.group_timings = timings
    stale_after = delete_retention_ms / 1000 * LOCAL_STATE_MARGIN
    # a restore that finds only a replaced owner's late write leaves a fenced marker for a stream (its
    # loss is then reported) and nothing for audio (the header's CRCs name what is missing)
    guards = {
        "streams": StoreGuard(stale_after=stale_after, fenced_value=encode_fenced),
        "audio": StoreGuard(stale_after=stale_after),
    }
    input_topic = app.topic(kafka.input_topic, schema=_raw(), partitions=kafka.partitions)
    output_topic = app.topic(kafka.output_topic, schema=_raw(), partitions=kafka.partitions)
    dlq_topic = app.topic(kafka.dlq_topic, schema=_raw(), partitions=kafka.partitions)
    tables = {
        table: app.Table(
            table,
            key_type=bytes,
            value_type=bytes,
            partitions=kafka.partitions,
            extra_topic_configs=CHANGELOG_TOPIC_CONFIG,
            options={**ROCKSDB_OPTIONS, GUARD_OPTION: guards[table]},
            standby_buffer_size=STANDBY_BUFFER,
            recovery_buffer_size=RECOVERY_BUFFER,
        )
        for table in TABLES
    }
    engine = engine or InferenceEngine(settings)
    health = Health()
    monitor = DeliveryMonitor(health)
    backoff = Backoff(maximum=worker.retry_backoff_max)
    outputs = Outputs(output_topic, dlq_topic, monitor, backoff, replica=name)
    live_config = live_config_for(settings)
    reader = KafkaChangelogReader(kafka)  # a take-over reads back what the last owner wrote before its fence
    store = StreamStore(
        ChangelogTable(tables["streams"], reader), ChangelogTable(tables["audio"], reader), live_config, OwnerEpochs()
    )
    streaming = settings.streaming
    transcribe: Transcribe = engine.transcribe
    if worker.inject_window_failures or worker.inject_window_crashes:
        try:
            plan = parse_window_failures(worker.inject_window_failures)
        except ValueError as exc:
            raise ConfigError("worker.inject_window_failures", worker.inject_window_failures, str(exc)) from None
        try:
            crashes = parse_window_crashes(worker.inject_window_crashes)
        except ValueError as exc:
            raise ConfigError("worker.inject_window_crashes", worker.inject_window_crashes, str(exc)) from None
        transcribe = FaultInjector(engine.transcribe, plan, crashes)
    steps = StepRunner(
        store,
        outputs,
        transcribe,
        shared_detector(),
        StepLimits(
            streaming.max_window_attempts,
            streaming.ended_retention,
            kafka.input_topic,
            backoff,
            skip_missed_ticks=streaming.skip_missed_ticks,
        ),
    )
    limits = ProcessorLimits(
        idle_timeout=streaming.idle_timeout,
        ended_retention=streaming.ended_retention,
        max_chunk_bytes=streaming.max_chunk_bytes,
        flush_interval=worker.state_flush_interval,
        eos_grace=streaming.eos_grace,
    )
    processor = StreamProcessor(
        store,
        outputs,
        steps,
        live_config,
        limits,
        previews_allowed=engine.has_room_for_previews,
    )
    worker_app = WorkerApp(app, settings, engine, health, processor, monitor, input_topic, name)
    _install(worker_app)
    return worker_app


def _install(worker: WorkerApp) -> None:
    app, health, processor = worker.app, worker.health, worker.processor
    health.set_ready("model", worker.engine.started)
    health.set_ready("partitions", False)
    limit = worker.settings.worker.max_inflight_records

    async def read(stream: Any) -> None:
        """Read one partition: apply records in order, acknowledge them when durable."""
        part: PartitionState | None = None
        try:
            async for event in stream.noack().events():
                message = event.message
                if processor.draining:
                    continue  # handing over: the next owner reads it
                if part is None or part.scope.closed:
                    part = processor.partitions.get(message.partition) or _open_partition(
                        processor, message.partition, limit
                    )
                holes = part.order.holes
                ready = part.order.offer(message.offset, event)  # once each, in offset order (after a seek too)
                if part.order.holes > holes:
                    m.INPUT_OFFSETS_SKIPPED.inc(part.order.holes - holes)
                    log.warning("partition %d: %d offset(s) absent from the log before %d", part.partition,
                                part.order.holes - holes, message.offset)  # fmt: skip
                part.delivered_at = time.monotonic()
                start = part.order.reread_from()
                if start is not None:  # a record came early: read the partition again from the one missing
                    m.INPUT_REREADS.labels(reason="early").inc()
                    await _reread(app, TP(message.topic, message.partition), start)
                part.reading = True
                try:
                    for _, taken in ready:
                        await take(part, taken)
                finally:
                    part.reading = False
                    part.delivered_at = time.monotonic()
        except asyncio.CancelledError:  # revoked: the next owner reads the records in flight again
            if part is not None and processor.partitions.get(part.partition) is part:
                _close_partition(processor, part.partition)
            raise

    async def take(part: PartitionState, event: Any) -> None:
        """Apply one record of the partition, the next in offset order."""
        message = event.message
        if not await _claimed(processor, part):  # once: this owner's epoch, fenced on the changelogs
            return  # revoked while it was being taken over: the next owner reads the record
        await part.acks.wait_for_room()
        while worker.engine.saturated():  # the pool is full: stop reading until it drains
            await asyncio.sleep(0.05)
        if part.scope.closed:  # revoked while it waited: the next owner reads the record
            return
        ticket = part.acks.add(message.offset, event, message.timestamp or 0.0)
        record = InputRecord(
            key=event.key,
            value=event.value,
            headers=_header_list(event.headers),
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            timestamp_ms=int((message.timestamp or 0) * 1000),
        )
        processor.handle(record, ticket, part)
        m.INFLIGHT_RECORDS.labels(partition=str(message.partition)).set(part.acks.in_flight)

    app.agent(worker.input_topic, name="transcribe", isolated_partitions=True)(read)

    topic = worker.settings.kafka.input_topic
    # From an assignment until faust has restored the tables: faust's own in_recovery flag is raised only
    # once its recovery task runs, and a partition claimed or adopted before that reads stale tables
    # (seen: a new owner taking the old owner's epoch).
    restoring = [False]
    started_up = [False]  # the first restore done: the start's length is logged once
    last = {"tick": time.monotonic(), "lag": 0.0}
    lag = ConsumerLagGauges()
    bursts = BurstFilter()

    async def tick() -> None:
        now = time.monotonic()
        m.LOOP_LAG.observe(max(0.0, now - last["tick"] - TIMER_INTERVAL))
        last["tick"] = now
        health.beat()
        limit_library_logs(bursts)  # faust sets up its handlers as the worker starts: attach once they exist
        health.set_ready("partitions", bool(app.assignor.assigned_actives()))
        worker.monitor.check()
        running = worker.engine.oldest_call_seconds()
        stalled = running > worker.settings.parallel.task_timeout
        health.set_fault("inference", f"a model call has been running for {running:.0f} s" if stalled else None)
        excuse = "broker" if not worker.monitor.available else "pool full" if worker.engine.saturated() else None
        waits = {p: part.acks.head_wait() for p, part in processor.partitions.items() if not part.scope.closed}
        health.set_fault("acks", ack_head_fault(waits, limit=worker.settings.worker.ack_stall_timeout, excuse=excuse))
        rereads: list[tuple[int, int, int]] = []
        for partition, part in processor.partitions.items():
            end = partition_end(app.consumer, TP(topic, partition))
            if end is not None:  # the partition's time moves on while its reader is caught up
                part.note_end(end.offset, end.seen_at, end.committed)
                start = None if restoring[0] or app.in_recovery else part.missing_tail(
                    end.offset, end.committed, now, READER_IDLE_REREAD
                )  # fmt: skip
                if start is not None:
                    rereads.append((partition, start, end.offset))
        for partition, start, end_offset in rereads:
            m.INPUT_REREADS.labels(reason="idle_tail").inc()
            log.warning(
                "partition %d: the log goes on to offset %d, but the reader has had nothing from %d on for %.0f s; "
                "reading it again from there",
                partition, end_offset, start, READER_IDLE_REREAD,
            )  # fmt: skip
            await _reread(app, TP(topic, partition), start)
        processor.tick(in_recovery=bool(app.in_recovery) or restoring[0])
        if now - last["lag"] >= LAG_INTERVAL:
            last["lag"] = now
            lag.forget_all_except(processor.partitions)
            lag.observe(_lag_samples(app, topic, processor))

    def assigned(sender: Any, /, *args: Any, signal: Any, **_: Any) -> None:
        # faust revoked every partition just before (no cooperative rebalancing): only those that changed
        # owner are closed; the others keep their streams and steps. New ones are opened now, so that a
        # restored partition's streams are watched even if it stays quiet.
        m.REBALANCES.inc()
        restoring[0] = True
        ours = {tp.partition for tp in (args[0] if args else ()) if tp.topic == topic}
        gone, new = moved(processor.partitions, ours)
        for partition in gone:
            _close_partition(processor, partition)
        for partition in sorted(new):
            _open_partition(processor, partition, limit)
        m.PARTITIONS_MOVED.labels(direction="out").inc(len(gone))
        m.PARTITIONS_MOVED.labels(direction="in").inc(len(new))
        if gone or new:
            log.info("assignment: kept %s, gave up %s, took over %s", sorted(ours - new), sorted(gone), sorted(new))

    def restored(sender: Any, /, *args: Any, **_: Any) -> None:  # faust's recovery is done: streams resume
        restoring[0] = False
        if not started_up[0]:
            started_up[0] = True
            log.info(
                "in the group and restored %.1f s after the process started (imports, model, join, tables)",
                time.time() - psutil.Process().create_time(),
            )

    async def before_stop() -> None:
        try:
            report = await hand_over(processor, app.consumer.commit, worker.settings.worker.drain_timeout)
        finally:
            # Every partition is closed before the group is left (`MemberApp._stop_consumer`): a step left to
            # the next owner that returns after it publishes and stores nothing, and no write of this owner
            # lands after the next owner's fence.
            for partition in list(processor.partitions):
                _close_partition(processor, partition)
        m.HANDOVERS.labels(outcome="finished").inc(report.steps_in_flight - report.steps_abandoned)
        m.HANDOVERS.labels(outcome="abandoned").inc(report.steps_abandoned)
        log.info(
            "handed over in %.2f s: %d step(s) finished, %d left to the next owner, %d stream(s) unstored",
            report.seconds,
            report.steps_in_flight - report.steps_abandoned,
            report.steps_abandoned,
            report.streams_unstored,
        )

    def commit_position(tp: TP) -> tuple[bool, int | None]:
        if tp.topic != topic:
            return False, None
        part = processor.partitions.get(tp.partition)
        return True, None if part is None or part.scope.closed else part.acks.position

    app.timer(TIMER_INTERVAL)(tick)
    app.on_partitions_assigned.connect(assigned)
    app.on_rebalance_complete.connect(restored)
    app.before_stop = before_stop
    app.commit_position = commit_position


async def _reread(app: Any, tp: TP, offset: int) -> None:
    """Seek ``tp`` back to ``offset`` (the records fetched again are taken in order, duplicates dropped)."""
    try:
        await app.consumer.seek(tp, offset)
    except Exception as error:  # revoked meanwhile: the next owner reads from the commit
        log.info("partition %d: no re-read from %d (%s)", tp.partition, offset, error)


async def _claimed(processor: StreamProcessor, part: PartitionState) -> bool:
    """Wait until the partition is taken over (its owner epoch fenced); False if it was revoked meanwhile."""
    try:
        await processor.claim(part)
    except Fenced:
        return False
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # the reader itself is being stopped
        return False  # the take-over was cancelled with its revoked partition
    return True


def _open_partition(processor: StreamProcessor, partition: int, limit: int) -> PartitionState:
    previous = processor.partitions.pop(partition, None)
    if previous is not None:
        previous.close()
        processor.release(partition)
    part = PartitionState(partition, PartitionScope(partition), PartitionAcks(_ack, limit))
    processor.partitions[partition] = part
    m.PARTITION_OWNED.labels(partition=str(partition)).set(1)
    return part


def _close_partition(processor: StreamProcessor, partition: int) -> None:
    part = processor.partitions.pop(partition, None)
    processor.release(partition)  # no write of the old ownership is accepted from now on
    if part is not None:
        part.close()
        m.INFLIGHT_RECORDS.labels(partition=str(partition)).set(0)
    with contextlib.suppress(KeyError):
        m.PARTITION_OWNED.remove(str(partition))


def _lag_samples(app: faust.App, topic: str, processor: StreamProcessor) -> list[PartitionSample]:
    """Sample each owned partition: its end offset as the consumer last saw it, and where this replica is."""
    samples = []
    for partition, part in processor.partitions.items():
        try:
            highwater = app.consumer.highwater(TP(topic, partition))
        except Exception:  # not assigned any more (a rebalance is under way)
            continue
        if highwater is None:  # no fetch answered yet for this partition
            continue
        samples.append(
            PartitionSample(
                partition=partition,
                high_watermark=int(highwater),
                position=part.acks.position,
                oldest_pending_timestamp=part.acks.oldest_timestamp,
                last_consumed_timestamp=part.acks.last_acked_timestamp,
            )
        )
    return samples


def _ack(event: Any) -> None:
    event.ack()
