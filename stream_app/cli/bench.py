"""`stream-app bench NAME`: benchmarks that print a table and, with --json, one JSON object last.

Each benchmark is a module ``stream_app.bench.<name>`` with ``add_arguments(parser)`` and
``run(args, settings) -> int``; it measures the reference (faster-whisper called directly) in the
same run, on the same audio, so the ratios hold on a noisy machine.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
from collections.abc import Iterator
from types import FrameType
from typing import Any

from stream_app.cli.actions import action_subparsers
from stream_app.config import Settings

log = logging.getLogger(__name__)

BENCHMARKS = {
    "latency": "word lags of 1-16 real-time streams through the service, CPU per audio second, WER vs whole file",
    "capacity": "N simulated live streams through the streaming and inference code, no Kafka: lags, cost, GPU",
    "accuracy": "streamed vs whole-file WER file by file on synthetic speech, speech left without words",
    "soak": "hours of audio through one stream and many short streams: memory growth, evictions",
    "throughput": "sequential vs batched faster-whisper vs the service vs stream-app batch",
    "scaling": "aggregate throughput with 1 and 2 worker replicas pinned to one core each",
    "precision": "real-time factor, WER and memory per model and precision, adaptive mode",
    "cache": "repeated content: hit rate, per-tier look-up latency, repeat speed-up",
    "memory": "batched path with reused vs freshly allocated feature buffers: traced allocations, RSS",
    "chaos": "replicas killed, broker and Redis restarted under live streams: verified against an undisturbed run",
    "failover": "a replica killed, stopped, rolled, added and removed, the broker stopped: how long streams wait",
    "flood": "10,000 one-chunk streams into one replica: alive, memory, health, every stream evicted",
    "context": "fitted vs full encoder context on the same live streams: decode time, WER",
    "replicas": "model replicas x CTranslate2 threads on the same short windows: throughput, latency",
    "profiles": "variants of the live rule in process on the same corpus: streamed WER vs whole file, lags, compute",
}


def register(subparsers: Any) -> None:
    """Add `bench` and one sub-command per benchmark module that exists."""
    parser: argparse.ArgumentParser = subparsers.add_parser("bench", help="run a benchmark")
    sub = action_subparsers(parser, "bench", "BENCHMARK")
    for name, help_text in BENCHMARKS.items():
        try:
            module = importlib.import_module(f"stream_app.bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"stream_app.bench.{name}":
                raise
            continue
        bench = sub.add_parser(name, help=help_text)
        bench.add_argument("--json", action="store_true", help="print one JSON object on the last line")
        module.add_arguments(bench)
        bench.set_defaults(handler=_runner(name, module))


def _runner(name: str, module: Any) -> Any:
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        from stream_app.clients.exceptions import KafkaAccessError

        with stop_cleanly_on_termination():
            try:
                return int(module.run(args, settings))
            except KafkaAccessError as exc:
                log.error(
                    "bench %s runs the service on the configured Kafka, which is not usable: %s. Start a local "
                    "one with `stream-app local up`, or run `stream-app local run -- stream-app bench %s ...`",
                    name,
                    exc,
                    name,
                )
                return 2

    return handler


@contextlib.contextmanager
def stop_cleanly_on_termination() -> Iterator[None]:
    """SIGTERM or SIGHUP unwind the benchmark, so its ``with`` blocks stop what it started.

    A benchmark's replicas, brokers and Redis run in sessions of their own (so a replica killed on
    purpose takes nothing else with it); Python's default on SIGTERM ends the process without
    unwinding, which left them running for hours, retrying a broker that was gone. The first signal
    raises ``SystemExit`` (exit status 128 + signal); a second one while cleaning up ends at once.
    """

    def leave(signum: int, frame: FrameType | None) -> None:
        signal.signal(signum, signal.SIG_DFL)
        raise SystemExit(128 + signum)

    previous = {s: signal.signal(s, leave) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
