"""`stream-app bench flood`: ten thousand stream ids, one chunk each, into one replica.

A recorder fleet that connects once and goes away (or a client bug that makes up a stream id per
chunk) must not take a replica down: every stream holds state until the idle timeout evicts it. One
replica (idle timeout ``--idle-timeout``, 5 s) on fresh topics of the configured stack; ``--streams``
ids each send one 100 ms chunk of a quiet noise floor (no end of stream), as fast as one producer
goes. Meanwhile the replica's RSS (process and children, psutil) is sampled every 0.5 s and /healthz
polled every second; afterwards ``stream_app_streams_evicted_total`` and ``stream_app_live_streams``
are read from /metrics until every stream was evicted or ``--timeout`` passed. ``streams_evicted``
is the counter's total over its causes, as the worker reports it; the breakdown is printed beside it.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from confluent_kafka import Producer

from stream_app.audio.pcm import float_to_pcm
from stream_app.bench.report import emit
from stream_app.clients.kafka_config import producer_config
from stream_app.config import Settings
from stream_app.local import LocalStack
from stream_app.testing.service import Replica, ServiceHarness
from stream_app.testing.worker_probe import WorkerProbe, metric_by_label, metric_total
from stream_app.wire.chunk import SAMPLE_RATE, ChunkFormat
from stream_app.wire.chunk_codec import encode_chunk

GOALS = "worker_alive = true, peak_rss_mb <= 600, streams_evicted == streams, healthz_failures == 0"
FORMAT = ChunkFormat("s16le", SAMPLE_RATE, 1)
EVICTED = "stream_app_streams_evicted_total"
LIVE = "stream_app_live_streams"
ACCEPTED_LINE = 'stream_app_chunks_total{outcome="accepted"}'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the flood benchmark."""
    parser.add_argument("--streams", type=int, default=10_000, help="stream ids, one chunk each (10000)")
    parser.add_argument("--idle-timeout", type=float, default=5.0, help="the replica's streaming.idle_timeout (5 s)")
    parser.add_argument("--timeout", type=float, default=900.0, help="longest wait for every eviction (900 s)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Flood one replica with one-chunk streams; print memory, health and eviction figures."""
    started = time.monotonic()
    LocalStack(settings).up()
    env = {"STREAM_APP_STREAMING__IDLE_TIMEOUT": f"{args.idle_timeout}s"}
    with ServiceHarness(settings, env=env) as harness:
        replica = harness.start("r1", wait=300)
        probe = WorkerProbe(replica)
        probe.start()
        rss_ready = _latest_rss(probe)
        publish_started = time.monotonic()
        _flood(harness, args.streams)
        publish_s = time.monotonic() - publish_started
        timeline, evicted, live = _wait_for_evictions(replica, probe, args.streams, args.timeout)
        evict_s = time.monotonic() - publish_started
        probe.stop()
        alive = replica.running
        exposition = _metrics(replica) if alive else ""
        log_tail = "" if alive else harness.log_tail("r1")
    accepted = _sample(exposition, ACCEPTED_LINE)
    summary: dict[str, Any] = {
        "streams": args.streams,
        "worker_alive": alive,
        "peak_rss_mb": round(probe.peak_rss_mb, 1),
        "streams_evicted": int(evicted) if evicted is not None else None,
        "streams_evicted_by_cause": {k: int(v) for k, v in metric_by_label(exposition, EVICTED, "cause").items()},
        "healthz_failures": probe.health_failures,
        "live_streams_after": int(live) if live is not None else None,
        "healthz_checks": probe.health_checks,
        "chunks_accepted": int(accepted) if accepted is not None else None,
        "rss_ready_mb": round(rss_ready, 1),
        "rss_samples": len(probe.rss),
        "publish_s": round(publish_s, 1),
        "evict_wall_s": round(evict_s, 1),
        "idle_timeout_s": args.idle_timeout,
        "wall_s": round(time.monotonic() - started, 1),
        "goals": GOALS,
    }
    if log_tail:
        print(f"the replica exited; its log ends:\n{log_tail}\n")
    emit(f"flood: {args.streams} one-chunk streams into one replica", timeline, summary, as_json=args.json)
    return 0


def _flood(harness: ServiceHarness, streams: int) -> None:
    """Send one 100 ms chunk (no end of stream) for each of ``streams`` new stream ids, then wait for the acks."""
    rng = np.random.default_rng(7)
    pcm = float_to_pcm(rng.normal(0.0, 0.003, (SAMPLE_RATE // 10, 1)).astype(np.float32), FORMAT.encoding)
    producer = Producer(producer_config(harness.settings.kafka, client_id="stream-app-flood"))
    topic = harness.topics["input_topic"]
    for index in range(streams):
        key, value, headers = encode_chunk(f"flood-{index:05d}", 0, 0, pcm, FORMAT, False, "urn:stream-app:flood")
        while True:
            try:
                producer.produce(topic, value=value, key=key, headers=list(headers))
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(120)
    if remaining:
        raise RuntimeError(f"{remaining} flood chunks were not acknowledged")


def _wait_for_evictions(
    replica: Replica, probe: WorkerProbe, streams: int, timeout: float
) -> tuple[list[dict[str, Any]], float | None, float | None]:
    """Poll /metrics until every stream was evicted and none is live (or timeout, or the replica died)."""
    timeline: list[dict[str, Any]] = []
    evicted: float | None = None
    live: float | None = None
    started = time.monotonic()
    while replica.running and time.monotonic() - started < timeout:
        exposition = _metrics(replica)
        evicted, live = metric_total(exposition, EVICTED), metric_total(exposition, LIVE)
        timeline.append(
            {
                "t_s": round(time.monotonic() - started, 1),
                "rss_mb": round(_latest_rss(probe), 1),
                "evicted": evicted,
                "live": live,
                "healthz_failures": probe.health_failures,
            }
        )
        if evicted is not None and evicted >= streams and not live:
            break
        time.sleep(5.0)
    return timeline, evicted, live


def _metrics(replica: Replica) -> str:
    try:
        return replica.metrics()
    except OSError:
        return ""


def _latest_rss(probe: WorkerProbe) -> float:
    deadline = time.monotonic() + 5.0
    while not probe.rss and time.monotonic() < deadline:
        time.sleep(0.1)
    return probe.rss[-1][1] if probe.rss else float("nan")


def _sample(exposition: str, line_start: str) -> float | None:
    """Return the value of the one sample whose line starts with ``line_start`` (name and labels)."""
    for line in exposition.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return None
