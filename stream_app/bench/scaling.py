"""`stream-app bench scaling`: aggregate service throughput with 1 replica on one core vs 2 on two.

Each replica is pinned with ``taskset`` to its own core and runs CTranslate2 with one intra-op
thread, so the second replica adds a core's worth of compute. Both runs get the same streams on
fresh topics (same partition count) and are timed from the first chunk published to the last
end-of-stream segment read. The broker, the publisher and this process share those cores.
"""

from __future__ import annotations

import argparse
from typing import Any

from stream_app.bench.common import SERVICE_ENV, Clip, ServiceRun, make_clips, run_streams, window_env
from stream_app.bench.report import emit
from stream_app.config import Settings
from stream_app.testing.service import ServiceHarness

PINNING = {1: ("0",), 2: ("0", "1")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the scaling benchmark."""
    parser.add_argument("--files", type=int, default=16, help="streams, one generated file each (default 16)")
    parser.add_argument("--seconds", type=float, default=45.0, help="length of each stream in seconds (default 45)")
    parser.add_argument("--partitions", type=int, default=8, help="partitions of the topics (default 8)")
    parser.add_argument("--chunk-ms", type=float, default=500.0, help="chunk length of the streams")
    parser.add_argument(
        "--window", type=float, default=None, help="window length of the workers in seconds (default: the profile's)"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Time the same streams with one replica, then with two, and print the ratio."""
    clips = make_clips(args.files, args.seconds, seed=23)
    env = {**SERVICE_ENV, **window_env(args.window), "STREAM_APP_PARALLEL__INTRA_THREADS": "1"}
    rows: list[dict[str, Any]] = []
    runs: dict[int, ServiceRun] = {}
    for replicas, cores in PINNING.items():
        runs[replicas] = _measure(settings, env, clips, cores, args)
        result = runs[replicas]
        rows.append(
            {
                "replicas": replicas,
                "cores": ",".join(cores),
                "streams": len(clips),
                "audio_s": result.audio_seconds,
                "wall_s": result.wall_seconds,
                "rtx": result.rtx,
                "wer": result.wer,
                "ended": f"{result.completed}/{len(clips)}",
            }
        )
    summary: dict[str, Any] = {
        "model": settings.optimization.model,
        "precision": settings.optimization.default_precision,
        "streams": len(clips),
        "audio_seconds": round(runs[1].audio_seconds, 2),
        "replicas_1_rtx": round(runs[1].rtx, 3),
        "replicas_2_rtx": round(runs[2].rtx, 3),
        "replicas_2_vs_1": round(runs[2].rtx / runs[1].rtx, 3) if runs[1].rtx else 0.0,
        "goal": "replicas_2_vs_1 >= 1.7",
    }
    emit(
        "scaling: aggregate throughput, replicas pinned one core each (intra_threads=1)",
        rows,
        summary,
        as_json=args.json,
    )
    return 0


def _measure(
    settings: Settings, env: dict[str, str], clips: list[Clip], cores: tuple[str, ...], args: argparse.Namespace
) -> ServiceRun:
    """Start one replica per core on fresh topics, warm them, then time every clip as one stream, all at once."""
    with ServiceHarness(settings, env=env, partitions=args.partitions) as harness:
        for index, core in enumerate(cores):
            harness.start(f"r{index + 1}", cpus=core, wait=0)
        for name in harness.replicas:
            harness.wait_ready(name)
        _wait_balanced(harness, len(cores))
        run_streams(harness, clips[: 2 * len(cores)], 2 * len(cores), label="warmup", chunk_ms=args.chunk_ms)
        return run_streams(harness, clips, len(clips), label="measured", chunk_ms=args.chunk_ms)


def _wait_balanced(harness: ServiceHarness, replicas: int, timeout: float = 60.0) -> None:
    """Wait until every replica reports ready again (a rebalance after the last join has settled)."""
    import time

    deadline = time.monotonic() + timeout
    time.sleep(2.0 if replicas > 1 else 0.0)
    while time.monotonic() < deadline and not all(r.ready() for r in harness.replicas.values()):
        time.sleep(0.5)
