"""The engine on real tiny.en: replicas that share the work, the cache asked before the pool, no stall at rest."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from prometheus_client import REGISTRY

from stream_app.audio.files import decode_audio_file
from stream_app.cache import TranscriptCache
from stream_app.cache.memory_tier import MemoryTier
from stream_app.config import Settings
from stream_app.inference.engine import InferenceEngine
from stream_app.inference.types import WindowJob, WindowTranscript


@pytest.fixture(scope="session")
def local_stack() -> None:
    """No Kafka or Redis needed for these tests."""
    return None


@pytest.fixture(scope="module")
def jfk(jfk_path: Path) -> npt.NDArray[np.float32]:
    return decode_audio_file(jfk_path)


class RecordingCache(TranscriptCache):
    """A memory-tier cache that notes which thread asked it."""

    def __init__(self) -> None:
        super().__init__([MemoryTier(1 << 24, 600.0)])
        self.threads: list[threading.Thread] = []

    def lookup(self, key: str, *, window_start: float = 0.0) -> WindowTranscript | None:
        self.threads.append(threading.current_thread())
        return super().lookup(key, window_start=window_start)


def _with_replicas(settings: Settings, count: int) -> Settings:
    parallel = dataclasses.replace(settings.parallel, max_workers=count, load_balancing="round_robin")
    return dataclasses.replace(settings, parallel=parallel)


@pytest.fixture
def two_replicas(settings: Settings) -> Iterator[InferenceEngine]:
    engine = InferenceEngine(_with_replicas(settings, 2), use_cache=False)
    engine.start("tiny.en", "int8")
    yield engine
    engine.close()


def _calls(pool: str, worker: str) -> float:
    labels = {"pool": pool, "worker": worker}
    return REGISTRY.get_sample_value("stream_app_pool_batch_size_count", labels) or 0.0


async def test_two_replicas_share_the_windows_and_agree(
    two_replicas: InferenceEngine, jfk: npt.NDArray[np.float32]
) -> None:
    pool = str(two_replicas.active)
    before = [_calls(pool, "0"), _calls(pool, "1")]
    results = await asyncio.gather(*(two_replicas.transcribe(WindowJob(f"s{i}", 0, 0.0, jfk)) for i in range(4)))
    assert len({r.text for r in results}) == 1 and "ask not what your country" in results[0].text.lower()
    assert _calls(pool, "0") > before[0] and _calls(pool, "1") > before[1]
    assert [m["model"] for m in two_replicas.loaded()] == ["tiny.en"]  # one model key, two copies
    assert not two_replicas.stalled() and two_replicas.oldest_call_seconds() == 0.0


async def test_the_cache_answers_before_the_pool_off_the_event_loop(
    settings: Settings, jfk: npt.NDArray[np.float32]
) -> None:
    cache = RecordingCache()
    engine = InferenceEngine(settings, cache=cache)
    engine.start("tiny.en", "int8")
    try:
        first = await engine.transcribe(WindowJob("a", 0, 0.0, jfk))
        again = await engine.transcribe(WindowJob("b", 3, 40.0, jfk))
        prompted = await engine.transcribe(WindowJob("c", 0, 0.0, jfk, prompt="We choose to go to the Moon."))
    finally:
        engine.close()
    assert not first.cached and again.cached and not prompted.cached
    assert again.text == first.text
    assert again.words[0].start == pytest.approx(first.words[0].start + 40.0)
    assert cache.threads and all(t is not threading.main_thread() for t in cache.threads)
    assert all(not t.name.startswith("inference-") for t in cache.threads)  # never inside an inference thread
