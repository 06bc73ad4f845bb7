"""`stream-app bench latency`: final-segment latency of live streams vs bare faster-whisper on the same windows.

Streams are published in real time (one thread per stream, distinct generated audio) to a real
worker process with the ``live`` profile and no cache (``STREAM_APP_CACHING__CACHE_LEVELS=[]``), so a
repeated run measures inference, not look-ups. Every final segment carries ``latency_ms``: publish
time minus the ``ce_time`` of the chunk that made its window ready. After the service part the same
windows are rebuilt in-process from the same samples (the buffer is a pure function of them) and
``transcribe_window`` is timed on each: the bare cost the service adds its overhead to.
"""

from __future__ import annotations

import argparse
import dataclasses
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from stream_app.audio.files import read_native_audio
from stream_app.bench.common import Clip, make_clips
from stream_app.bench.report import emit, percentile
from stream_app.clients.chunking import PlannedChunk, plan_chunks, prepare_audio
from stream_app.config import Settings
from stream_app.inference.registry import model_key, transcriber_registry
from stream_app.local import LocalStack
from stream_app.streaming import StreamSession, Window, WindowingConfig
from stream_app.testing.service import ServiceHarness
from stream_app.wire.chunk import ChunkFormat
from stream_app.wire.chunk_codec import decode_chunk, encode_chunk
from stream_app.worker.profile import windowing_for

GOALS = "1 stream, live: p95_ms <= 500 and overhead_ratio <= 1.15"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the latency benchmark."""
    parser.add_argument("--streams", default="1,4,8", help="comma-separated concurrent stream counts (default 1,4,8)")
    parser.add_argument("--seconds", type=float, default=60.0, help="audio per stream, published in real time")
    parser.add_argument("--chunk-ms", type=float, default=100.0, help="chunk length the recorders send (default 100)")
    parser.add_argument("--partitions", type=int, default=8, help="partitions of the service's topics")


def with_profile(settings: Settings, profile: str) -> Settings:
    """Return ``settings`` with the streaming profile chosen (explicit window durations still override it)."""
    return dataclasses.replace(settings, streaming=dataclasses.replace(settings.streaming, profile=profile))


def matching_worker_env(settings: Settings, *, cache: bool = False) -> dict[str, str]:
    """Worker overrides that make the worker cut, decode and cache exactly as ``settings`` says here.

    The harness starts workers from defaults plus these variables, so the in-process reference and
    the service see the same windows, model and precision. ``cache=False`` turns every tier off.
    """
    stream = settings.streaming
    env = {
        "STREAM_APP_STREAMING__PROFILE": stream.profile,
        "STREAM_APP_STREAMING__CHUNK_DURATION": f"{round(settings.window_seconds * 1000)}ms",
        "STREAM_APP_STREAMING__OVERLAP_DURATION": f"{round(settings.overlap_seconds * 1000)}ms",
        "STREAM_APP_STREAMING__INTERIM_STEP": f"{round(settings.interim_step_seconds * 1000)}ms",
        "STREAM_APP_OPTIMIZATION__MODEL": settings.optimization.model,
        "STREAM_APP_OPTIMIZATION__DEFAULT_PRECISION": settings.optimization.default_precision,
        "STREAM_APP_OPTIMIZATION__DEVICE": settings.optimization.device,
    }
    for name in ("pause_search", "min_pause"):  # the pause-aligned cut, where this build has it
        if hasattr(stream, name):
            env[f"STREAM_APP_STREAMING__{name.upper()}"] = str(getattr(stream, name))
    if not cache:
        env["STREAM_APP_CACHING__CACHE_LEVELS"] = "[]"
    return env


def plan_clip(clip: Clip, chunk_ms: float) -> tuple[list[PlannedChunk], ChunkFormat]:
    """Cut a clip into the chunks a recorder sends (16 kHz mono s16le)."""
    frames, fmt = prepare_audio(read_native_audio(clip.path), "s16le16k")
    return list(plan_chunks(frames, fmt, chunk_ms)), fmt


def rebuild_windows(
    stream_id: str, chunks: Sequence[PlannedChunk], fmt: ChunkFormat, config: WindowingConfig
) -> list[Window]:
    """Return the final windows the worker cuts from these chunks, each chunk encoded and decoded as on the wire."""
    session = StreamSession(stream_id, config)
    windows: list[Window] = []
    for planned in chunks:
        key, value, headers = encode_chunk(
            stream_id, planned.seq, planned.offset, planned.pcm, fmt, planned.end_of_stream, "bench"
        )
        chunk = decode_chunk(key, value, headers, max_bytes=len(value) + 1)
        windows.extend(session.feed(chunk).windows)
    if chunks and not chunks[-1].end_of_stream:
        windows.extend(session.close().windows)
    return [w for w in windows if not w.is_empty and not w.is_interim]


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Publish 1, 4 and 8 real-time streams, collect final-segment latencies, then time the bare windows."""
    counts = sorted({int(c) for c in str(args.streams).split(",") if c.strip()})
    if not counts or counts[0] < 1:
        raise SystemExit("--streams: give positive stream counts, e.g. 1,4,8")
    settings = with_profile(settings, "live")
    started = time.monotonic()
    clips = make_clips(max(counts), args.seconds, seed=23)
    plans = [plan_clip(clip, args.chunk_ms) for clip in clips]
    LocalStack(settings).up()
    latencies: dict[int, list[float]] = {}
    with ServiceHarness(settings, env=matching_worker_env(settings), partitions=args.partitions) as harness:
        harness.start("r1")
        _publish(harness, {"warmup": plans[0]}, realtime=False)  # model warm, topics and partitions assigned
        harness.collect(["warmup"], timeout=300)
        for count in counts:
            ids = {f"live{count}-{i}": plans[i] for i in range(count)}
            _publish(harness, ids, realtime=True)
            collected = harness.collect(list(ids), timeout=300 + args.seconds)
            latencies[count] = [
                s.latency_ms for c in collected.values() for s in c.finals() if s.latency_ms is not None
            ]
    service_wall = time.monotonic() - started

    bare = _bare_times(settings, plans)
    rows = [_row(count, latencies[count], [t for i in range(count) for t in bare[i]]) for count in counts]
    summary: dict[str, Any] = {
        **{k: v for k, v in rows[0].items() if k != "streams"},
        "streams": counts[0],
        "model": settings.optimization.model,
        "precision": settings.optimization.default_precision,
        "profile": "live",
        "window_s": settings.window_seconds,
        "overlap_s": settings.overlap_seconds,
        "seconds_per_stream": args.seconds,
        "chunk_ms": args.chunk_ms,
        "cache": "disabled (STREAM_APP_CACHING__CACHE_LEVELS=[])",
        "service_wall_s": round(service_wall, 1),
        "wall_s": round(time.monotonic() - started, 1),
        "goals": GOALS,
        "rows": rows,
    }
    emit(
        "latency: final segments, chunk production to publication (ms), vs bare transcribe_window on the same windows",
        rows,
        summary,
        as_json=args.json,
    )
    return 0


def _publish(
    harness: ServiceHarness, streams: Mapping[str, tuple[list[PlannedChunk], ChunkFormat]], *, realtime: bool
) -> None:
    """Publish each stream from its own thread (a recorder each) and wait until all are sent."""
    errors: list[BaseException] = []

    def send(stream_id: str, chunks: list[PlannedChunk], fmt: ChunkFormat) -> None:
        try:
            with harness.publisher() as publisher:
                publisher.publish_chunks(stream_id, chunks, fmt, realtime=realtime)
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(sid, *plan), daemon=True) for sid, plan in streams.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"publishing failed: {errors[0]}") from errors[0]


def _bare_times(settings: Settings, plans: Sequence[tuple[list[PlannedChunk], ChunkFormat]]) -> list[list[float]]:
    """Milliseconds of ``transcribe_window`` per window that produced words, per stream, one call at a time."""
    config = windowing_for(settings)
    transcriber = transcriber_registry(settings).load(model_key(settings))
    out: list[list[float]] = []
    for index, (chunks, fmt) in enumerate(plans):
        stream_id = f"bare-{index}"
        windows = rebuild_windows(stream_id, chunks, fmt, config)
        if index == 0 and windows:
            transcriber.transcribe_window(windows[0].job(stream_id))  # warm-up, not counted
        times: list[float] = []
        for window in windows:
            begin = time.perf_counter()
            result = transcriber.transcribe_window(window.job(stream_id))
            elapsed = (time.perf_counter() - begin) * 1000.0
            if result.words:
                times.append(elapsed)
        out.append(times)
    transcriber.close()
    return out


def _row(streams: int, service: list[float], bare: list[float]) -> dict[str, Any]:
    p95, bare_p95 = percentile(service, 95), percentile(bare, 95)
    return {
        "streams": streams,
        "segments": len(service),
        "p50_ms": round(percentile(service, 50), 1),
        "p95_ms": round(p95, 1),
        "p99_ms": round(percentile(service, 99), 1),
        "bare_windows": len(bare),
        "bare_p50_ms": round(percentile(bare, 50), 1),
        "bare_p95_ms": round(bare_p95, 1),
        "overhead_ratio": round(p95 / bare_p95, 3) if bare_p95 > 0 else None,
    }
