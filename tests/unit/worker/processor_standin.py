"""A worker's record path over in-memory tables, one partition, driven by hand (records, ticks, clocks)."""

from __future__ import annotations

import asyncio

import numpy as np

from stream_app.inference.types import WindowJob, WindowTranscript, Word
from stream_app.metrics.health import Health
from stream_app.streaming import LiveConfig
from stream_app.testing.fake_model import LoudnessDetector
from stream_app.testing.tables import memory_store
from stream_app.testing.topics import RecordingTopic
from stream_app.wire.chunk import ChunkFormat
from stream_app.wire.chunk_codec import encode_chunk
from stream_app.worker.acks import PartitionAcks, Ticket
from stream_app.worker.outputs import DeliveryMonitor, Outputs
from stream_app.worker.partitions import PartitionState
from stream_app.worker.processor import InputRecord, ProcessorLimits, StreamProcessor
from stream_app.worker.records import EndedMarker
from stream_app.worker.retry import Backoff
from stream_app.worker.scope import PartitionScope
from stream_app.worker.steps import StepLimits, StepRunner
from stream_app.worker.store import StreamStore

FAST = Backoff(0.001, 0.001)
PCM = ChunkFormat("s16le", 16_000, 1)
T0 = 1_800_000_000.0  # broker timestamps of the records (s)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Worker:
    """A processor over in-memory tables with one partition, driven by hand: records in, ticks, clocks."""

    def __init__(self, store: StreamStore | None = None) -> None:
        self.wall, self.mono = Clock(T0), Clock(1000.0)
        self.store = store or memory_store()
        self.outputs = Outputs(RecordingTopic(), RecordingTopic(), DeliveryMonitor(Health()), FAST)

        self.kinds: list[str] = []

        async def transcribe(job: WindowJob) -> WindowTranscript:
            self.kinds.append(job.kind.value)
            word = Word(job.start + 0.01, job.start + 0.05, "hi", 0.9)
            return WindowTranscript((word,), "hi", -0.2, 0.01, 1.0, "m", "int8")

        steps = StepRunner(
            self.store, self.outputs, transcribe, LoudnessDetector(), StepLimits(3, 300.0, "in", FAST), clock=self.wall
        )
        limits = ProcessorLimits(idle_timeout=60.0, ended_retention=300.0, max_chunk_bytes=1 << 20, flush_interval=0.25)
        self.processor = StreamProcessor(
            self.store,
            self.outputs,
            steps,
            LiveConfig(),
            limits,
            clock=self.wall,
            monotonic=self.mono,
        )
        self.part = PartitionState(0, PartitionScope(0), PartitionAcks(lambda _: None, 100))
        self.part.adopted = True
        self.processor.partitions[0] = self.part
        self.offset = 0
        self.seqs: dict[str, int] = {}
        self.tickets: list[Ticket] = []

    def record(
        self,
        stream_id: str,
        timestamp: float,
        seq: int | None = None,
        *,
        loud: bool = False,
        end: bool = False,
        offset: int | None = None,
        key: str | None = None,
    ) -> None:
        """The reader gets a 0.1 s chunk of ``stream_id`` stamped ``timestamp`` by the broker (the next seq).

        The chunk is digital silence, or with ``loud`` noise the stand-in voice detector calls speech; with
        ``end`` it is the stream's last. Its sample ``offset`` is ``seq`` chunks in unless given; ``key`` is the
        stream key it carries.
        """
        if seq is None:
            seq = self.seqs.get(stream_id, 0)
        self.seqs[stream_id] = max(self.seqs.get(stream_id, 0), seq + 1)
        samples = np.random.default_rng(seq).integers(-3000, 3000, 1600) if loud else np.zeros(1600)
        pcm = samples.astype("<i2").tobytes()
        at = seq * 1600 if offset is None else offset
        record_key, value, headers = encode_chunk(stream_id, seq, at, pcm, PCM, end, "test", stream_key=key)
        ticket = self.part.acks.add(self.offset, object())
        self.tickets.append(ticket)
        rec = InputRecord(record_key, value, headers, "in", 0, self.offset, timestamp_ms=int(timestamp * 1000))
        self.processor.handle(rec, ticket, self.part)
        self.offset += 1

    async def tick(self, seconds: float) -> None:
        """Let ``seconds`` pass on both clocks; the timer runs (twice: it fires every 0.25 s), tasks finish."""
        self.wall.now += seconds
        self.mono.now += seconds
        for _ in range(2):  # the second run stores what steps of the first left dirty (the state flush)
            self.processor.tick(in_recovery=False)
            while self.part.scope.task_count:
                await asyncio.sleep(0.001)
            self.mono.now += self.processor.limits.flush_interval

    def ended(self, stream_id: str) -> bool:
        return isinstance(self.store.read(0, stream_id), EndedMarker)
