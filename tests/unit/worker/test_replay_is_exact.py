"""A replay can never change a published transcript (issue 17): a crash after any step changes no final.

One stream's records are processed straight through by a worker's steps over in-memory tables, then
again with the worker killed after step k (for every k in turn): its memory is thrown away, the next
owner restores the stored state and reads again every record the stored state does not cover. Both
runs must publish the same final segments, id by id and word by word, and the consumer (highest
revision per id) must see the same transcript; the killed run may only repeat records, never change one.
"""

from __future__ import annotations

import asyncio

import numpy as np
import orjson

from stream_app.clients.transcript import TranscriptAssembler
from stream_app.inference.types import WindowJob, WindowTranscript, Word
from stream_app.metrics.health import Health
from stream_app.streaming import LiveConfig, StreamSession
from stream_app.streaming.session import DecodeRequest
from stream_app.testing.fake_model import LoudnessDetector, TruthTranscriber, chunks_of, speech_audio
from stream_app.testing.tables import MemoryTable
from stream_app.testing.topics import RecordingTopic
from stream_app.wire.chunk import SAMPLE_RATE, AudioChunk
from stream_app.wire.segment import TranscriptSegment
from stream_app.wire.segment_codec import decode_segment
from stream_app.worker.live import LiveStream
from stream_app.worker.outputs import DeliveryMonitor, Outputs
from stream_app.worker.records import StreamHeader
from stream_app.worker.retry import Backoff
from stream_app.worker.steps import StepLimits, StepRunner
from stream_app.worker.store import StreamStore

FAST = Backoff(0.001, 0.001)
CONFIG = LiveConfig.from_seconds(preview_step=0.0)


def sentence(start: float, text: str) -> list[Word]:
    return [
        Word(round(start + 0.5 * i, 3), round(start + 0.5 * i + 0.4, 3), w, 0.9) for i, w in enumerate(text.split())
    ]


TRUTH = (
    sentence(0.4, "we need twelve of them by friday")
    + sentence(5.1, "the driver checked the blue suitcase near the station")
    + sentence(11.6, "okay thank you")
)


class JobTranscriber:
    """The truth-telling model behind the worker's job interface (a decode is a function of its job)."""

    def __init__(self) -> None:
        self.truth = TruthTranscriber(TRUTH, jitter=0.12)

    async def __call__(self, job: WindowJob) -> WindowTranscript:
        start = round(job.start * SAMPLE_RATE)
        stop = start + int(np.asarray(job.samples).shape[0])
        prefix = tuple(
            Word(job.start + job.prefix_end - 0.1, job.start + job.prefix_end, text, 0.9) for text in job.prefix.split()
        )
        request = DecodeRequest(job.kind, start, stop, job.samples, prefix, (), job.window_index)
        return self.truth(request)


class Run:
    """A worker's steps for one stream over tables that outlive the worker."""

    def __init__(self) -> None:
        self.streams, self.audio = MemoryTable(), MemoryTable()
        self.topic = RecordingTopic()
        self.store = StreamStore(self.streams, self.audio, CONFIG)
        self.live: LiveStream | None = None
        self.steps = self._steps()

    def _steps(self) -> StepRunner:
        outputs = Outputs(self.topic, RecordingTopic(), DeliveryMonitor(Health()), FAST)
        return StepRunner(self.store, outputs, JobTranscriber(), LoudnessDetector(), StepLimits(3, 300.0, "in", FAST))

    def owner(self) -> LiveStream:
        if self.live is None:
            stored = self.store.read(0, "s")
            if isinstance(stored, StreamHeader):
                self.live = self.store.restore(0, "s", stored)
            else:
                self.live = LiveStream("s", 0, StreamSession("s", CONFIG, session="0.0"))
        return self.live

    def crash(self) -> list[AudioChunk]:
        """Kill the worker: its memory goes; the records the stored state does not cover are read again."""
        assert self.live is not None
        unread = list(self.live.unstored)
        self.live = None
        self.steps = self._steps()
        return unread

    async def feed(self, chunk: AudioChunk) -> None:
        live = self.owner()
        live.session.feed(chunk)
        live.unstored.append(chunk)
        self.store.write_audio(live)

    async def step(self) -> bool:
        """One step if the stream has work; False when it has none."""
        live = self.owner()
        if live.evicting or not live.session.has_work(previews=False):
            return False
        await self.steps.step(live, previews=False)
        await self.steps.publish_and_store(live, [])
        return True

    def published(self) -> list[TranscriptSegment]:
        return [decode_segment(record.value or b"") for record in self.topic.sent]


def finals(segments: list[TranscriptSegment]) -> dict[str, str]:
    out: dict[str, str] = {}
    for segment in segments:
        if segment.is_final:
            assert out.get(segment.segment_id, segment.text) == segment.text, "an id was published with other words"
            out[segment.segment_id] = segment.text
    return out


def consumer_view(segments: list[TranscriptSegment]) -> list[tuple[str, str]]:
    assembler = TranscriptAssembler("s")
    for segment in segments:
        assembler.add(segment)
    return [(s.segment_id, s.text) for s in assembler.final_segments()]


async def play(run: Run, chunks: list[AudioChunk], crash_after: int | None = None) -> int:
    """Feed chunks and run steps; kill the worker once, after step ``crash_after``; return the steps run."""
    steps = 0
    pending = list(chunks)
    while pending:
        chunk = pending.pop(0)
        await run.feed(chunk)
        while await run.step():
            steps += 1
            if steps == crash_after:
                pending = run.crash() + pending
                break
    while await run.step():
        steps += 1
    return steps


async def straight_run(chunks: list[AudioChunk]) -> tuple[Run, int]:
    run = Run()
    return run, await play(run, chunks)


def test_a_crash_after_any_step_changes_no_final_and_no_word() -> None:
    audio = speech_audio(TRUTH, 15.0)
    chunks = chunks_of(audio, chunk_seconds=0.25)
    reference, steps = asyncio.run(straight_run(chunks))
    expected = reference.published()
    assert " ".join(text for _, text in consumer_view(expected) if text).split() == [w.text for w in TRUTH]
    assert steps > 10
    for crash_after in range(1, steps + 1):
        run = Run()
        asyncio.run(play(run, chunks, crash_after))
        got = run.published()
        assert finals(got) == finals(expected), f"crash after step {crash_after}"
        assert consumer_view(got) == consumer_view(expected), f"crash after step {crash_after}"


def test_every_published_record_was_stored_before_it_was_sent() -> None:
    """The outbox: what a step publishes is in the stored state first, so a replay sends the same again."""
    audio = speech_audio(TRUTH, 15.0)
    run = Run()
    asyncio.run(play(run, chunks_of(audio, chunk_seconds=0.25)))
    stored: set[tuple[str, int]] = set()
    for value in run.streams.history(0, b"s"):
        if value[:2] != b"SH":
            continue
        length = int.from_bytes(value[7:11], "big")
        document = orjson.loads(value[11 : 11 + length])
        stored |= {(d["segment_id"], d["revision"]) for d in document["outbox"]}
    sent = {(s.segment_id, s.revision) for s in run.published()}
    assert sent and sent <= stored
