from __future__ import annotations

import asyncio

import numpy as np

from stream_app.inference.exceptions import InferenceError
from stream_app.inference.pool import InferenceFailed, PreviewExpired
from stream_app.inference.types import WindowJob, WindowTranscript, Word
from stream_app.metrics.health import Health
from stream_app.metrics.worker_metrics import PREVIEWS_EXPIRED
from stream_app.streaming import LiveConfig, StreamSession
from stream_app.testing.fake_model import LoudnessDetector
from stream_app.testing.tables import MemoryTable
from stream_app.testing.topics import RecordingTopic
from stream_app.wire.chunk import AudioChunk
from stream_app.worker.live import LiveStream
from stream_app.worker.outputs import DeliveryMonitor, Outputs
from stream_app.worker.records import attempt_key, decode_attempt
from stream_app.worker.retry import Backoff
from stream_app.worker.steps import StepLimits, StepRunner, Transcribe
from stream_app.worker.store import StreamStore

CONFIG = LiveConfig.from_seconds(preview_step=0.0)
FAST = Backoff(0.001, 0.001)


def runner(
    store: StreamStore,
    transcribe: Transcribe,
    transcripts: RecordingTopic | None = None,
    dead_letters: RecordingTopic | None = None,
    max_attempts: int = 3,
) -> StepRunner:
    """A step runner with the default limits (or ``max_attempts``), writing to recording topics."""
    outputs = Outputs(
        transcripts or RecordingTopic(), dead_letters or RecordingTopic(), DeliveryMonitor(Health()), FAST
    )
    limits = StepLimits(max_attempts, 300.0, "audio.chunks", FAST)
    return StepRunner(store, outputs, transcribe, LoudnessDetector(), limits)


async def _settled(live: LiveStream) -> None:
    """Give the loop up to 0.2 s to take a stream's count back (it follows the count's own write)."""
    for _ in range(200):
        if not live.attempts:
            return
        await asyncio.sleep(0.001)


def stream_with_a_ready_window(store: StreamStore) -> LiveStream:
    live = LiveStream("s", 0, StreamSession("s", CONFIG, session="0.0"))
    rng = np.random.default_rng(0)
    for seq in range(15):  # 1.5 s of speech: the tick at 1 s is due
        live.session.feed(AudioChunk("s", seq, seq * 1600, rng.uniform(-0.5, 0.5, 1600).astype(np.float32)))
        store.write_audio(live)
    return live


async def test_a_window_start_counts_once_however_often_its_write_is_retried() -> None:
    audio = MemoryTable()
    store = StreamStore(MemoryTable(), audio, CONFIG)
    live = stream_with_a_ready_window(store)
    audio.fail_next = 2  # the changelog refuses the count twice, then takes it
    tries = audio.writes + 3

    async def transcribe(job: WindowJob) -> WindowTranscript:
        assert job.on_start is not None
        job.on_start()  # the model starts the window: the attempt is counted
        while audio.writes < tries:  # two refused writes and the one that is stored
            await asyncio.sleep(0.001)
        word = Word(job.start + 0.5, job.start + 1.0, "hello", 0.9)
        return WindowTranscript((word,), "hello", -0.2, 0.01, 1.0, "m", "int8")

    await runner(store, transcribe).step(live)
    stored = decode_attempt(audio.get(0, attempt_key("s", "0.0")) or b"")
    assert stored == (0, 1)  # one start of one window on header 0: a crash now must not count as three


async def test_a_decode_that_publishes_nothing_leaves_the_next_one_in_company_and_counted_once() -> None:
    audio = MemoryTable()
    store = StreamStore(MemoryTable(), audio, CONFIG)
    live = stream_with_a_ready_window(store)
    isolated: list[bool] = []

    async def transcribe(job: WindowJob) -> WindowTranscript:
        isolated.append(job.isolated)
        assert job.on_start is not None
        job.on_start()  # the model starts the window: the attempt is counted
        while decode_attempt(audio.get(0, attempt_key("s", "0.0")) or bytes(16))[1] == 0:
            await asyncio.sleep(0.001)  # the count is durable before the model runs (the pool waits for it)
        assert job.on_finish is not None
        job.on_finish()  # the model has returned the window
        return WindowTranscript((), "", -0.2, 0.01, 1.0, "m", "int8")  # nothing heard: no segment to publish

    steps = runner(store, transcribe)
    await steps.step(live)
    rng = np.random.default_rng(1)
    for seq in range(15, 25):  # a second more: the tick at 2 s is due
        live.session.feed(AudioChunk("s", seq, seq * 1600, rng.uniform(-0.5, 0.5, 1600).astype(np.float32)))
        store.write_audio(live)
    await _settled(live)  # the count is taken back on the loop
    assert live.attempts == 0
    await steps.step(live)
    # no worker died in the first decode: the second is batched with other streams' decodes, not run
    # alone, and its count is the first start since the header, not the second
    assert isolated == [False, False]
    assert decode_attempt(audio.get(0, attempt_key("s", "0.0")) or b"") == (0, 1)


async def test_a_decode_the_model_failed_on_every_try_leaves_no_count_standing() -> None:
    audio = MemoryTable()
    store = StreamStore(MemoryTable(), audio, CONFIG)
    live = stream_with_a_ready_window(store)
    tries = 0

    async def transcribe(job: WindowJob) -> WindowTranscript:
        nonlocal tries
        tries += 1
        assert job.on_start is not None and not job.isolated
        job.on_start()
        while decode_attempt(audio.get(0, attempt_key("s", "0.0")) or bytes(16))[1] == 0:
            await asyncio.sleep(0.001)
        assert job.on_finish is not None
        job.on_finish()  # the model has returned the window, as a failure
        raise InferenceFailed(job, "CUDA error: an illegal memory access was encountered")

    await runner(store, transcribe).step(live)  # a commit decode: given up, no gap, nothing published
    await _settled(live)
    assert tries == 3
    assert live.attempts == 0  # the model returned each time: the next decode is not suspect


async def test_a_decode_that_was_in_a_dead_worker_s_model_runs_alone_only_one_death_before_its_last() -> None:
    async def isolated(attempts: int, limit: int) -> bool:
        store = StreamStore(MemoryTable(), MemoryTable(), CONFIG)
        live = stream_with_a_ready_window(store)
        live.attempts = attempts  # as restored from the changelog's attempt marker
        jobs: list[WindowJob] = []

        async def transcribe(job: WindowJob) -> WindowTranscript:
            jobs.append(job)
            return WindowTranscript((), "", -0.2, 0.01, 1.0, "m", "int8")

        await runner(store, transcribe, max_attempts=limit).step(live)
        return jobs[0].isolated

    # one worker died (a SIGKILL, a lost node): the takeover decodes it with the other streams
    assert not await isolated(attempts=1, limit=3)
    assert await isolated(attempts=2, limit=3)  # a second death: alone, so a third names it only
    assert await isolated(attempts=1, limit=2)  # the next death is its last: alone already


async def test_a_stream_behind_its_audio_decodes_at_the_newest_step_unless_told_to_take_every_one() -> None:
    async def first_decode(limits: StepLimits) -> float:
        store = StreamStore(MemoryTable(), MemoryTable(), CONFIG)
        live = LiveStream("s", 0, StreamSession("s", CONFIG, session="0.0"))
        rng = np.random.default_rng(0)
        for seq in range(60):  # 6 s of speech arrived while the model was busy with other streams
            live.session.feed(AudioChunk("s", seq, seq * 1600, rng.uniform(-0.5, 0.5, 1600).astype(np.float32)))
        ends: list[float] = []

        async def transcribe(job: WindowJob) -> WindowTranscript:
            ends.append(job.start + len(job.samples) / 16000)
            return WindowTranscript((), "", -0.2, 0.01, 1.0, "m", "int8")

        outputs = Outputs(RecordingTopic(), RecordingTopic(), DeliveryMonitor(Health()), FAST)
        await StepRunner(store, outputs, transcribe, LoudnessDetector(), limits).step(live)
        return ends[0]

    assert await first_decode(StepLimits(3, 300.0, "audio.chunks", FAST)) == 5.0  # the newest due step
    every = StepLimits(3, 300.0, "audio.chunks", FAST, skip_missed_ticks=False)
    assert await first_decode(every) == 1.0


async def test_a_preview_dropped_by_the_pool_costs_the_stream_nothing_but_the_preview() -> None:
    config = LiveConfig.from_seconds()  # previews every 250 ms
    store = StreamStore(MemoryTable(), MemoryTable(), config)
    live = LiveStream("s", 0, StreamSession("s", config, session="0.0"))
    rng = np.random.default_rng(0)
    for seq in range(7):  # 0.7 s of speech: no commit decode is due yet, a preview is
        live.session.feed(AudioChunk("s", seq, seq * 1600, rng.uniform(-0.5, 0.5, 1600).astype(np.float32)))
    kinds: list[str] = []

    async def transcribe(job: WindowJob) -> WindowTranscript:
        kinds.append(job.kind.value)
        raise PreviewExpired("preview 0 of s waited 1.20 s behind commit decodes (limit 1 s)")

    dead_letters, transcripts = RecordingTopic(), RecordingTopic()
    before = PREVIEWS_EXPIRED._value.get()
    await runner(store, transcribe, transcripts, dead_letters).step(live)
    assert kinds == ["preview"]
    assert live.served_at == 0.0  # a preview is not a turn of the stream's: its next commit decode keeps its place
    assert PREVIEWS_EXPIRED._value.get() == before + 1
    assert not dead_letters.sent and not transcripts.sent
    assert live.session.plan(previews=True).request is None  # not asked again until a preview step later


async def test_a_stream_s_decodes_tell_the_pool_when_it_was_last_served() -> None:
    store = StreamStore(MemoryTable(), MemoryTable(), CONFIG)
    live = stream_with_a_ready_window(store)  # as after a takeover: never served on this replica
    served: list[float] = []

    async def transcribe(job: WindowJob) -> WindowTranscript:
        served.append(job.served_at)
        return WindowTranscript((), "", -0.2, 0.01, 1.0, "m", "int8")

    steps = runner(store, transcribe)
    await steps.step(live)
    returned = live.served_at
    rng = np.random.default_rng(1)
    for seq in range(15, 25):  # one more second: the next commit step is due
        live.session.feed(AudioChunk("s", seq, seq * 1600, rng.uniform(-0.5, 0.5, 1600).astype(np.float32)))
    await steps.step(live)
    assert served == [0.0, returned] and returned > 0.0  # first in the pool's order, then by when it was served


async def test_a_retried_decode_waits_its_turn_again() -> None:
    store = StreamStore(MemoryTable(), MemoryTable(), CONFIG)
    live = stream_with_a_ready_window(store)
    served: list[float] = []

    async def transcribe(job: WindowJob) -> WindowTranscript:
        served.append(job.served_at)
        if len(served) == 1:
            raise InferenceError("the model failed once")
        return WindowTranscript((), "", -0.2, 0.01, 1.0, "m", "int8")

    await runner(store, transcribe).step(live)
    assert len(served) == 2 and served[0] == 0.0 and served[1] > 0.0  # behind the streams served meanwhile
