"""The cache inside real worker processes: one replica's results are another's Redis hits; a Redis outage costs nothing.

Each test runs its own ``redis-server`` (the shared one may already hold jfk's windows from other runs,
and one test stops it).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from stream_app.audio.files import read_native_audio
from stream_app.bench.cache import LocalRedisServer
from stream_app.bench.scrape import Samples, decode_lookups, sample, scrape
from stream_app.clients.chunking import prepare_audio
from stream_app.config import Settings
from stream_app.testing.service import Collected, ServiceHarness
from stream_app.testing.wer import word_error_rate
from stream_app.wire.chunk import ChunkFormat

L2_PATH = "STREAM_APP_CACHING__L2_PATH"
REDIS_URL = "STREAM_APP_CACHING__L3_REDIS_URL"
# a worker behind its audio passes over commit steps it missed, and how far behind it is depends on the
# machine's load: the two workers must decode the same steps to meet the same keys
EVERY_STEP = "STREAM_APP_STREAMING__SKIP_MISSED_TICKS"
HITS = "stream_app_cache_hits_total"
MISSES = "stream_app_cache_misses_total"
ERRORS = "stream_app_cache_errors_total"
BREAKER = "stream_app_cache_breaker_state"


def _metrics(harness: ServiceHarness, replica: str) -> Samples:
    return scrape(harness.replicas[replica].metrics())


def _jfk(jfk_path: Path) -> tuple[npt.NDArray[np.float32], ChunkFormat]:
    """Jfk as 16 kHz mono frames: scaling them gives new audio (new cache keys) with the same words."""
    return prepare_audio(read_native_audio(jfk_path), "s16le16k", "s16le")


def _stream(harness: ServiceHarness, stream_id: str, frames: npt.NDArray[np.float32], fmt: ChunkFormat) -> Collected:
    with harness.publisher() as publisher:
        publisher.publish_frames(stream_id, frames, fmt, chunk_ms=200)
    return harness.collect([stream_id], timeout=180)[stream_id]


def _wait_for_entries(server: LocalRedisServer, harness: ServiceHarness) -> None:
    deadline = time.monotonic() + 120
    with server.client() as client:
        while client.dbsize() == 0:
            assert time.monotonic() < deadline, f"nothing stored in Redis:\n{harness.log_tail('r1')}"
            time.sleep(0.2)


def test_first_workers_results_are_the_second_workers_redis_hits(
    settings: Settings, jfk_path: Path, jfk_reference: str, tmp_path: Path
) -> None:
    frames, fmt = _jfk(jfk_path)
    with (
        LocalRedisServer(tmp_path / "redis") as server,
        # previews (timing: where the stream is when a step runs) bypass the cache; every other decode is a
        # function of the audio and the stored state when every commit step is decoded, so the second
        # worker meets the same keys
        ServiceHarness(settings, env={REDIS_URL: server.url, EVERY_STEP: "false"}) as harness,
    ):
        harness.start("a", env={L2_PATH: str(tmp_path / "l2-a")})
        first = _stream(harness, "first", frames, fmt)
        a = _metrics(harness, "a")
        harness.stop("a")
        # a new process: empty L1, its own empty L2 folder, the same Redis
        harness.start("b", env={L2_PATH: str(tmp_path / "l2-b")})
        second = _stream(harness, "second", frames, fmt)
        b = _metrics(harness, "b")
        log_b = harness.log_tail("b")

    assert first.transcript.complete and second.transcript.complete, log_b
    assert word_error_rate(jfk_reference, first.transcript.text) <= 0.10, first.transcript.text
    windows = sample(a, MISSES, tier="redis")
    assert windows > 0 and sample(a, HITS, tier="redis") == 0  # a private, empty Redis: a computed everything
    assert sample(b, HITS, tier="redis") == windows  # same samples, same windows, same keys: all from Redis
    assert sample(b, MISSES, tier="redis") == 0
    assert sample(b, HITS, tier="memory") == 0 and sample(b, HITS, tier="disk") == 0
    # counted by decode kind: every tick, pause and cut of the repeat hit; previews were never looked up
    assert decode_lookups(b, previews=False) == (windows, windows)
    assert decode_lookups(a, previews=True)[1] == 0 and decode_lookups(b, previews=True)[1] == 0
    assert second.transcript.text == first.transcript.text
    assert [(s.start, s.end, s.text) for s in second.finals()] == [(s.start, s.end, s.text) for s in first.finals()]


def test_redis_stopped_mid_stream_then_restarted(
    settings: Settings, jfk_path: Path, jfk_reference: str, tmp_path: Path
) -> None:
    frames, fmt = _jfk(jfk_path)
    half = frames.shape[0] // 2
    # 4 s windows: the first half of jfk (5.5 s) must complete a window, or nothing reaches Redis before it stops
    env = {REDIS_URL: "", "STREAM_APP_CACHING__BREAKER_RESET": "1s"}
    with LocalRedisServer(tmp_path / "redis") as server:
        env[REDIS_URL] = server.url
        with ServiceHarness(settings, env=env) as harness:
            harness.start("r1")
            assert sample(_metrics(harness, "r1"), BREAKER, tier="redis") == 0
            with harness.publisher() as publisher:
                first = publisher.publish_frames("outage", frames[:half], fmt, chunk_ms=200, end_of_stream=False)
                _wait_for_entries(server, harness)  # a window was looked up in and stored to Redis while it was up
                server.stop()
                publisher.publish_frames(
                    "outage", frames[half:], fmt, chunk_ms=200, start_seq=first.chunks, start_offset=half
                )
            during = harness.collect(["outage"], timeout=180)["outage"]
            down = _metrics(harness, "r1")

            server.start()  # same port, empty
            time.sleep(1.5)  # past breaker_reset: the next look-up is the probe that closes it
            after = _stream(harness, "after-restart", frames * np.float32(0.8), fmt)
            up = _metrics(harness, "r1")
            with server.client() as client:
                stored_after = client.dbsize()
            log = harness.log_tail("r1")

    assert during.transcript.complete, log
    assert word_error_rate(jfk_reference, during.transcript.text) <= 0.10, during.transcript.text
    assert sample(down, BREAKER, tier="redis") == 2, log
    assert sum(v for (name, labels), v in down.items() if name == ERRORS and ("tier", "redis") in labels) >= 2

    assert after.transcript.complete, log
    assert word_error_rate(jfk_reference, after.transcript.text) <= 0.10, after.transcript.text
    assert sample(up, BREAKER, tier="redis") == 0, log
    assert sample(up, MISSES, tier="redis") > sample(down, MISSES, tier="redis")  # Redis consulted again
    assert stored_after > 0  # and written to: the restarted server started empty
