"""The faust application: topics, tables, the agent that owns partitions, and the periodic timer.

One agent actor per partition (``isolated_partitions``): a partition's records are handled in order,
one at a time (table writes are never concurrent), while different partitions' windows reach the
inference pool together and are batched there.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import faust

from stream_app.clients.faust_options import faust_broker_options, faust_web_options
from stream_app.config import Settings, expand_path
from stream_app.inference.engine import InferenceEngine
from stream_app.metrics import worker_metrics as m
from stream_app.metrics.health import Health
from stream_app.streaming import MergePolicy, WindowingConfig
from stream_app.wire.dlq import dead_letter_record
from stream_app.wire.exceptions import ChunkRejected
from stream_app.wire.segment import TranscriptSegment
from stream_app.wire.segment_codec import encode_segment
from stream_app.worker.idle import IdleTracker, idle_tick_headers
from stream_app.worker.processor import ChunkProcessor, InputRecord
from stream_app.worker.tables import TableSessionStore

log = logging.getLogger(__name__)

TIMER_INTERVAL = 1.0
# Table records stay small (audio is paged), but a header holding many large out-of-order chunks can
# pass Kafka's 1 MB default: the changelog topics and the producer allow 8 MB.
MAX_RECORD_BYTES = 8 * 1024 * 1024
CHANGELOG_CONFIG = {"cleanup.policy": "compact", "max.message.bytes": str(MAX_RECORD_BYTES)}
# faust's RocksDB defaults are sized for big servers (64 MB x 3 write buffers and a 2 GB block cache
# per table partition); the tables hold only live streams' few seconds of audio, so memtables that
# fill slowly to 192 MB would show up as worker RSS creeping for an hour.
ROCKSDB_OPTIONS = {
    "write_buffer_size": 4 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "target_file_size_base": 16 * 1024 * 1024,
    "block_cache_size": 8 * 1024 * 1024,
    "block_cache_compressed_size": 0,
}
_TABLE: dict[str, Any] = {
    "extra_topic_configs": {"max.message.bytes": str(MAX_RECORD_BYTES)},
    "options": ROCKSDB_OPTIONS,
}
TABLES = ("buffers", "audio", "mergers")


def changelog_topics(settings: Settings) -> list[str]:
    """Return the changelog topic of every table, as faust names them (``<app id>-<table>-changelog``)."""
    return [f"{settings.kafka.group_id}-{table}-changelog" for table in TABLES]
ADOPT_EVERY = 10  # timer ticks between scans of the tables for streams to watch


def _raw() -> faust.Schema[bytes, bytes]:
    """Bytes in, bytes out: faust's default JSON serializer would fail on PCM."""
    return faust.Schema(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


def _header_list(headers: Any) -> list[tuple[str, bytes]]:
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers or [])


def replica_name(settings: Settings, given: str | None = None) -> str:
    """Stable name of this replica: its RocksDB folder, so a restart reuses local state."""
    return given or f"{socket.gethostname()}-{settings.worker.web_port}"


@dataclass
class WorkerApp:
    """The faust app and the pieces the agent and timer share."""

    app: faust.App
    settings: Settings
    engine: InferenceEngine
    health: Health
    tracker: IdleTracker
    store: TableSessionStore
    processor: ChunkProcessor
    input_topic: Any
    replica: str


class FaustOutputs:
    """`Outputs` over faust topics: each send is awaited until the broker acknowledges it."""

    def __init__(self, output_topic: Any, dlq_topic: Any) -> None:
        self.output_topic = output_topic
        self.dlq_topic = dlq_topic

    async def publish(self, segments: Sequence[TranscriptSegment]) -> None:
        """Send segments in order, then wait for every acknowledgement."""
        pending = []
        for segment in segments:
            fut = await self.output_topic.send(key=segment.stream_id.encode(), value=encode_segment(segment))
            pending.append(fut)
            m.SEGMENTS.labels(kind="final" if segment.is_final else "interim").inc()
        for fut in pending:
            await fut

    async def dead_letter(self, record: InputRecord, error: ChunkRejected) -> None:
        """Send the record as it arrived, with the reason in headers."""
        key, value, headers = dead_letter_record(
            record.key, record.value, record.headers, error, record.topic, record.partition, record.offset
        )
        fut = await self.dlq_topic.send(key=key, value=value, headers=headers)
        await fut


def create_worker_app(
    settings: Settings, *, replica: str | None = None, engine: InferenceEngine | None = None
) -> WorkerApp:
    """Build the faust app from the configuration (nothing connects until the worker starts)."""
    kafka = settings.kafka
    name = replica_name(settings, replica)
    datadir = expand_path(settings.worker.data_dir) / kafka.group_id / name  # RocksDB files are per app id
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        kafka.group_id,
        broker=f"kafka://{kafka.bootstrap_servers}",
        broker_session_timeout=settings.worker.session_timeout,
        broker_heartbeat_interval=min(3.0, settings.worker.session_timeout / 3),
        broker_commit_interval=settings.worker.commit_interval,
        store="rocksdb://",
        datadir=str(datadir),
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        producer_acks=-1,
        producer_max_request_size=MAX_RECORD_BYTES,
        consumer_max_fetch_size=MAX_RECORD_BYTES,
        consumer_auto_offset_reset="earliest",
        **faust_broker_options(kafka),
        **faust_web_options(settings.worker),
        table_standby_replicas=0,
        loghandlers=[],
    )
    input_topic = app.topic(kafka.input_topic, schema=_raw(), partitions=kafka.partitions)
    output_topic = app.topic(kafka.output_topic, schema=_raw(), partitions=kafka.partitions)
    dlq_topic = app.topic(kafka.dlq_topic, schema=_raw(), partitions=kafka.partitions)
    buffers = app.Table("buffers", key_type=bytes, value_type=bytes, partitions=kafka.partitions, **_TABLE)
    audio = app.Table("audio", key_type=bytes, value_type=bytes, partitions=kafka.partitions, **_TABLE)
    mergers = app.Table("mergers", key_type=bytes, value_type=bytes, partitions=kafka.partitions, **_TABLE)

    policy = MergePolicy.from_settings(settings)
    engine = engine or InferenceEngine(settings)
    health = Health()
    tracker = IdleTracker(settings.streaming.idle_timeout)
    store = TableSessionStore(buffers, audio, mergers, policy)
    processor = ChunkProcessor(
        store,
        FaustOutputs(output_topic, dlq_topic),
        engine.transcribe,
        WindowingConfig.from_settings(settings),
        policy,
        max_chunk_bytes=settings.streaming.max_chunk_bytes,
        tracker=tracker,
    )
    worker = WorkerApp(app, settings, engine, health, tracker, store, processor, input_topic, name)
    _install(worker)
    return worker


def _install(worker: WorkerApp) -> None:
    app, health = worker.app, worker.health
    health.set_ready("model", worker.engine.started)
    health.set_ready("partitions", False)

    async def process(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            record = InputRecord(
                key=event.key,
                value=event.value,
                headers=_header_list(event.headers),
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
            )
            try:
                await worker.processor.handle(record)
            except (TimeoutError, ConnectionError):
                raise  # the broker is unreachable: let faust restart the agent; the offset is not committed
            except Exception as exc:
                log.exception("record %s[%d]@%d failed", record.topic, record.partition, record.offset)
                await worker.processor.outputs.dead_letter(
                    record, ChunkRejected("processing_error", f"{type(exc).__name__}: {exc}")
                )

    app.agent(worker.input_topic, name="transcribe", isolated_partitions=True)(process)

    last = {"tick": time.monotonic(), "count": 0}

    async def tick() -> None:
        now = time.monotonic()
        m.LOOP_LAG.observe(max(0.0, now - last["tick"] - TIMER_INTERVAL))
        last["tick"] = now
        health.beat()
        assigned = app.assignor.assigned_actives()
        health.set_ready("partitions", bool(assigned))
        last["count"] += 1
        if last["count"] % ADOPT_EVERY == 1:  # state restored from a changelog has no chunk to announce it
            for stream_id in worker.store.stream_ids():
                worker.tracker.adopt(stream_id, now)
        m.LIVE_STREAMS.set(len(worker.tracker))
        for stream_id, last_seq, partition in worker.tracker.due(now):
            await worker.input_topic.send(
                key=stream_id.encode(), value=b"", headers=idle_tick_headers(last_seq), partition=partition
            )

    async def revoked(*_: Any, **__: Any) -> None:
        worker.tracker.clear()
        last["count"] = 0

    app.timer(TIMER_INTERVAL)(tick)
    app.on_partitions_revoked.connect(revoked)
