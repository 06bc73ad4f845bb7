"""`stream-app bench soak`: hours of audio through one stream, then many short streams: memory and eviction.

Part 1 publishes ``--hours`` of corpus speech (cycled, with pauses) as ONE stream, as fast as the
worker goes, in slices so that neither this process nor the broker's backlog holds it all; the
worker's RSS (psutil, its process and children) is sampled at every final segment against stream
time. The cache is off, so the memory is the streaming path's. Part 2 starts and ends
``--short-streams`` short streams (half end with end of stream, half just stop and must be evicted by
the idle timeout, set to 5 s), waits past the timeout and reads ``stream_app_live_streams`` from the
worker's /metrics, and reads the tables themselves (``live_streams_after``, ``ended_markers_after``).
The profile is ``live`` by default (20 s windows with previews); ``--profile
throughput`` measures 30 s windows without previews.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import threading
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
import psutil

from stream_app.audio.files import decode_audio_file
from stream_app.bench.common import BENCH_HOME, make_clips, with_profile, without_cache
from stream_app.bench.latency import plan_clip
from stream_app.bench.report import emit
from stream_app.config import Settings
from stream_app.local import LocalStack
from stream_app.testing.corpus import SAMPLE_RATE, build_corpus, cycle_audio
from stream_app.testing.service import Replica, ServiceHarness
from stream_app.testing.topic_reader import read_topic
from stream_app.wire.chunk import ChunkFormat
from stream_app.worker.app import changelog_topics
from stream_app.worker.records import StreamHeader, decode_stream_record

GOALS = "growth_ratio <= 1.05 (after the warm-up) and live_streams_after = 0 (read from the tables)"
WARMUP_SHARE = 0.25  # growth is measured over the last three quarters of the stream
IDLE_TIMEOUT_S = 5.0
START_AFTER_S = 600.0  # rss_start_mb is read once the stream is 10 minutes in
LEAD_S = 300.0  # the publisher stays at most this much audio ahead of the worker's output
FORMAT = ChunkFormat("s16le", SAMPLE_RATE, 1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the soak benchmark."""
    parser.add_argument("--hours", type=float, default=2.0, help="audio through the one long stream (default 2)")
    parser.add_argument("--short-streams", type=int, default=50, help="short streams that start and end (default 50)")
    parser.add_argument("--profile", choices=("throughput", "live"), default="live", help="windowing profile")
    parser.add_argument("--chunk-ms", type=float, default=1000.0, help="chunk length of the long stream")
    parser.add_argument("--slice-seconds", type=float, default=60.0, help="audio published per publish_frames call")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the long stream and the short streams on one worker and print memory and eviction figures."""
    settings = without_cache(with_profile(settings, args.profile))
    started = time.monotonic()
    corpus = build_corpus(BENCH_HOME, files=6, sentences_per_file=8, long_silence=False, seed=31)
    pieces = [decode_audio_file(item.path) for item in corpus]
    short = make_clips(args.short_streams, 4.0, seed=41) if args.short_streams else []
    LocalStack(settings).up()
    env = {
        "STREAM_APP_STREAMING__IDLE_TIMEOUT": f"{IDLE_TIMEOUT_S}s",
        "STREAM_APP_STREAMING__ENDED_RETENTION": f"{IDLE_TIMEOUT_S}s",  # markers expire during the wait too
    }
    with ServiceHarness(settings, env=env, partitions=4) as harness:
        replica = harness.start("r1")
        long_run = _long_stream(harness, replica, pieces, args)
        long_wall = time.monotonic() - started
        short_started = time.monotonic()
        ended = _short_streams(harness, short, args.chunk_ms)
        live_after, waited = _live_streams_after(replica)
        short_wall = time.monotonic() - short_started
        in_tables = _streams_in_tables(harness)
    samples: list[tuple[float, float]] = long_run["samples"]
    warmup_s = max(START_AFTER_S, WARMUP_SHARE * (samples[-1][0] if samples else 0.0))
    at_start = next((mb for t, mb in samples if t >= START_AFTER_S), samples[0][1] if samples else float("nan"))
    at_warm = next((mb for t, mb in samples if t >= warmup_s), at_start)
    at_end = samples[-1][1] if samples else float("nan")
    rows = _sample_rows(samples)
    summary: dict[str, Any] = {
        "audio_hours": round(long_run["audio_seconds"] / 3600.0, 3),
        "stream_time_reached_s": round(samples[-1][0], 1) if samples else 0.0,
        "rss_start_mb": round(at_start, 1),
        "rss_end_mb": round(at_end, 1),
        "rss_max_mb": round(max(mb for _, mb in samples), 1) if samples else None,
        "warmup_s": round(warmup_s, 1),
        "rss_after_warmup_mb": round(at_warm, 1),
        "growth_ratio": round(at_end / at_warm, 4) if samples else None,
        "growth_ratio_from_10min": round(at_end / at_start, 4) if samples else None,
        "final_segments": long_run["segments"],
        "rss_samples": len(samples),
        "max_sample_gap_s": round(max_gap(samples), 1),
        "long_stream_wall_s": round(long_wall, 1),
        "rtx": round(long_run["audio_seconds"] / long_wall, 2) if long_wall > 0 else None,
        "short_streams": len(short),
        "short_streams_ended": ended,
        "live_streams_after": in_tables["live"],
        "ended_markers_after": in_tables["ended"],
        "live_streams_gauge_after": live_after,
        "waited_for_eviction_s": round(waited, 1),
        "short_streams_wall_s": round(short_wall, 1),
        "wall_s": round(time.monotonic() - started, 1),
        "profile": args.profile,
        "commit_step_s": settings.commit_step_seconds,
        "model": settings.optimization.model,
        "precision": settings.optimization.default_precision,
        "cache": "disabled (STREAM_APP_CACHING__CACHE_LEVELS=[])",
        "idle_timeout_s": IDLE_TIMEOUT_S,
        "goals": GOALS,
    }
    emit(
        f"soak: worker RSS against stream time ({args.profile} profile), then short streams",
        rows,
        summary,
        as_json=args.json,
    )
    return 0


def max_gap(samples: Sequence[tuple[float, float]]) -> float:
    """Return the longest stretch of stream time without a final segment (a stall or lost output shows here)."""
    times = sorted(t for t, _ in samples)
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def worker_rss_mb(replica: Replica) -> float:
    """Resident memory of the worker process and its children, MB."""
    if replica.process is None:
        return float("nan")
    process = psutil.Process(replica.process.pid)
    total = int(process.memory_info().rss)
    for child in process.children(recursive=True):
        try:
            total += int(child.memory_info().rss)
        except psutil.NoSuchProcess:
            continue
    return total / 1e6


def _long_stream(
    harness: ServiceHarness, replica: Replica, pieces: Sequence[npt.NDArray[np.float32]], args: argparse.Namespace
) -> dict[str, Any]:
    """Publish the long stream from a thread, read its segments here, sample RSS at each final one."""
    stream_id = "soak-long"
    total_seconds = args.hours * 3600.0
    progress = {"worker_s": 0.0}
    lead = threading.Condition()
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            seq, offset = 0, 0
            slices = cycle_audio(pieces, total_seconds, args.slice_seconds)
            with harness.publisher() as publisher:
                for piece in slices:
                    with lead:  # keep the backlog bounded: the broker and the consumer's buffers stay small
                        lead.wait_for(partial(_within_lead, offset / SAMPLE_RATE, progress), timeout=600)
                    last = offset + piece.shape[0] >= round(total_seconds * SAMPLE_RATE)
                    report = publisher.publish_frames(
                        stream_id,
                        piece.reshape(-1, 1),
                        FORMAT,
                        chunk_ms=args.chunk_ms,
                        start_seq=seq,
                        start_offset=offset,
                        end_of_stream=last,
                    )
                    seq += report.chunks
                    offset += piece.shape[0]
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    samples: list[tuple[float, float]] = []
    segments = 0
    with harness.tail(stream_id=stream_id) as tail:
        for segment in tail.segments(timeout=6 * 3600):
            if segment.stream_id != stream_id:
                continue
            if segment.is_final:
                segments += 1
                samples.append((segment.end, worker_rss_mb(replica)))
                with lead:
                    progress["worker_s"] = max(progress["worker_s"], segment.end)
                    lead.notify_all()
            if segment.end_of_stream or errors:
                break
    thread.join(timeout=60)
    if errors:
        raise RuntimeError(f"publishing the long stream failed: {errors[0]}") from errors[0]
    return {"samples": samples, "segments": segments, "audio_seconds": total_seconds}


def _within_lead(published_s: float, progress: dict[str, float]) -> bool:
    return published_s - progress["worker_s"] < LEAD_S


def _short_streams(harness: ServiceHarness, clips: Sequence[Any], chunk_ms: float) -> int:
    """Publish the short streams (odd ones without end of stream) and count those whose end was published."""
    if not clips:
        return 0
    ids = [f"soak-short-{i}" for i in range(len(clips))]
    with harness.publisher() as publisher:
        for i, (stream_id, clip) in enumerate(zip(ids, clips, strict=True)):
            chunks, fmt = plan_clip(clip, chunk_ms)
            if i % 2:  # a recorder that just goes away: only the idle timeout ends this stream
                chunks[-1] = dataclasses.replace(chunks[-1], end_of_stream=False)
            publisher.publish_chunks(stream_id, chunks, fmt)
    collected = harness.collect(ids, timeout=120)  # idle ends come 5 s (plus a tick) after the last chunk
    return sum(1 for c in collected.values() if c.transcript.complete)


def _live_streams_after(replica: Replica, limit: float = 60.0) -> tuple[float, float]:
    """Wait past the idle timeout, then poll ``stream_app_live_streams`` until 0 (or ``limit``); value and wait."""
    started = time.monotonic()
    time.sleep(IDLE_TIMEOUT_S + 3.0)
    value = _gauge(replica.metrics(), "stream_app_live_streams")
    while value != 0 and time.monotonic() - started < limit:
        time.sleep(1.0)
        value = _gauge(replica.metrics(), "stream_app_live_streams")
    return value, time.monotonic() - started


def _streams_in_tables(harness: ServiceHarness) -> dict[str, int]:
    """Read the streams table back from its changelog (latest value per key): live headers, ended markers."""
    topic = changelog_topics(harness.settings)[0]
    latest: dict[bytes, bytes | None] = {}
    for record in read_topic(harness.settings.kafka, topic):
        if record.key is not None:
            latest[record.key] = record.value
    counts = {"live": 0, "ended": 0}
    for value in latest.values():
        if value is None:
            continue
        kind = decode_stream_record(value)
        counts["live" if isinstance(kind, StreamHeader) else "ended"] += 1
    return counts


def _gauge(exposition: str, name: str) -> float:
    """Sum a metric's samples in Prometheus text (one sample for an unlabelled gauge)."""
    total, found = 0.0, False
    for line in exposition.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    return total if found else float("nan")


def _sample_rows(samples: Sequence[tuple[float, float]], rows: int = 12) -> list[dict[str, Any]]:
    """Thin the RSS samples to about ``rows`` evenly spaced in stream time for the table."""
    if not samples:
        return []
    end = samples[-1][0]
    marks = [end * k / rows for k in range(1, rows + 1)]
    out, j = [], 0
    for mark in marks:
        while j < len(samples) - 1 and samples[j][0] < mark:
            j += 1
        out.append({"stream_min": round(samples[j][0] / 60.0, 1), "rss_mb": round(samples[j][1], 1)})
    return out
