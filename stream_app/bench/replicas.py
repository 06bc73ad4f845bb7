"""`stream-app bench replicas`: N model replicas x T threads each, on the same short windows.

Short windows (2 to 10 s, cut at random from the synthetic corpus) go through an `InferencePool`
built as the worker builds it (fitted encoder context as configured, the configured batching),
once per layout: ``1x2`` is one model with two CTranslate2 threads, ``2x1`` two replicas with one
thread each. ``--streams`` concurrent streams each keep one window in flight (a stream's next window
waits for its previous one, as in the live path). The windows are split into rounds and every
layout runs each round in turn (the order rotating), so machine load falls on all of them alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from stream_app.audio.files import decode_audio_file
from stream_app.bench.common import BENCH_HOME
from stream_app.bench.report import emit, percentile
from stream_app.config import Settings
from stream_app.inference.pool import InferencePool
from stream_app.inference.registry import build_transcriber, encoder_context, model_key
from stream_app.inference.replicas import available_cores
from stream_app.inference.transcriber import WhisperTranscriber
from stream_app.inference.types import WindowJob
from stream_app.testing.corpus import SAMPLE_RATE, build_corpus


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the replicas benchmark."""
    parser.add_argument("--layouts", default="1x2,2x1", help="replicas x threads, comma-separated (default 1x2,2x1)")
    parser.add_argument("--streams", default="1,2,4", help="concurrent streams, comma-separated (default 1,2,4)")
    parser.add_argument("--windows", type=int, default=24, help="windows per stream count (default 24)")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="shortest window (default 2)")
    parser.add_argument("--max-seconds", type=float, default=10.0, help="longest window (default 10)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds the layouts alternate over (default 4)")
    parser.add_argument("--seed", type=int, default=5, help="corpus and cut seed")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Time every layout on the same windows at each stream count; print throughput and latency."""
    started = time.monotonic()
    layouts = [_layout(text) for text in str(args.layouts).split(",") if text.strip()]
    counts = sorted({int(c) for c in str(args.streams).split(",") if c.strip()})
    jobs = _short_windows(args.windows, args.min_seconds, args.max_seconds, args.seed)
    key = model_key(settings)
    loaded = {layout: _load(settings, layout) for layout in layouts}
    rows: list[dict[str, Any]] = []
    try:
        for streams in counts:
            figures = _measure(settings, loaded, jobs, streams, max(1, args.rounds))
            audio = sum(len(job.samples) for job in jobs) / SAMPLE_RATE
            for layout in layouts:
                wall, latencies = figures[layout]
                rows.append(
                    {
                        "layout": f"{layout[0]}x{layout[1]}",
                        "streams": streams,
                        "windows": len(jobs),
                        "wall_s": round(wall, 2),
                        "audio_per_wall_s": round(audio / wall, 2),
                        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
                        "p95_ms": round(percentile(latencies, 95) * 1000, 1),
                    }
                )
    finally:
        for transcribers in loaded.values():
            for transcriber in transcribers:
                transcriber.close()
    best = {s: max((r for r in rows if r["streams"] == s), key=lambda r: r["audio_per_wall_s"]) for s in counts}
    summary: dict[str, Any] = {
        **{f"best_layout_{s}": best[s]["layout"] for s in counts},
        **{_ratio_name(layouts, s): _ratio(rows, s, layouts) for s in counts if len(layouts) == 2},
        "model": key.model,
        "precision": key.precision,
        "encoder_context": encoder_context(settings).describe(),
        "window_s": f"{args.min_seconds:g}-{args.max_seconds:g}",
        "cores": available_cores(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "wall_s": round(time.monotonic() - started, 1),
        "rows": rows,
    }
    emit("replicas: model replicas x CTranslate2 threads on the same short windows", rows, summary, as_json=args.json)
    return 0


def _layout(text: str) -> tuple[int, int]:
    replicas, _, threads = text.strip().partition("x")
    if not replicas.isdigit() or not threads.isdigit() or int(replicas) < 1 or int(threads) < 1:
        raise SystemExit(f"--layouts: write replicas x threads like 2x1, not {text!r}")
    return int(replicas), int(threads)


def _ratio_name(layouts: Sequence[tuple[int, int]], streams: int) -> str:
    (a, b), (c, d) = layouts
    return f"throughput_{c}x{d}_vs_{a}x{b}_streams_{streams}"


def _ratio(rows: Sequence[dict[str, Any]], streams: int, layouts: Sequence[tuple[int, int]]) -> float:
    """Throughput of the second layout over the first's, on the same windows."""
    first, second = (next(r for r in rows if r["streams"] == streams and r["layout"] == f"{a}x{b}") for a, b in layouts)
    return round(float(second["audio_per_wall_s"]) / float(first["audio_per_wall_s"]), 3)


def _short_windows(count: int, shortest: float, longest: float, seed: int) -> list[WindowJob]:
    """Cut ``count`` windows of random length from the corpus (a fixed seed: the same windows every run)."""
    corpus = build_corpus(BENCH_HOME, files=6, sentences_per_file=8, seed=7)
    audio = [decode_audio_file(item.path) for item in corpus]
    rng = np.random.default_rng(seed)
    jobs = []
    for index in range(count):
        samples = audio[index % len(audio)]
        length = min(len(samples), round(rng.uniform(shortest, longest) * SAMPLE_RATE))
        start = int(rng.integers(0, len(samples) - length + 1))
        jobs.append(WindowJob(f"w{index}", index, start / SAMPLE_RATE, samples[start : start + length].copy()))
    return jobs


def _load(settings: Settings, layout: tuple[int, int]) -> list[WhisperTranscriber]:
    replicas, threads = layout
    key = model_key(settings)
    return [build_transcriber(settings, key, cpu_threads=threads) for _ in range(replicas)]


def _measure(
    settings: Settings,
    loaded: dict[tuple[int, int], list[WhisperTranscriber]],
    jobs: Sequence[WindowJob],
    streams: int,
    rounds: int,
) -> dict[tuple[int, int], tuple[float, list[float]]]:
    """Run every round on every layout (order rotating); each layout's wall seconds and window latencies."""
    layouts = list(loaded)
    totals: dict[tuple[int, int], tuple[float, list[float]]] = {layout: (0.0, []) for layout in layouts}
    size = -(-len(jobs) // rounds)
    for n in range(rounds):
        part = list(jobs[n * size : (n + 1) * size])
        if not part:
            continue
        for k in range(len(layouts)):
            layout = layouts[(n + k) % len(layouts)]
            parallel = dataclasses.replace(settings.parallel, max_workers=layout[0], inter_threads=1)
            with InferencePool(loaded[layout], parallel, name=f"bench-{layout[0]}x{layout[1]}") as pool:
                pool.submit(part[0]).result()  # warm this layout's threads and buffers, not counted
                wall, latencies = _closed_loop(pool, part, streams)
            total, seen = totals[layout]
            totals[layout] = (total + wall, seen + latencies)
    return totals


def _closed_loop(pool: InferencePool, jobs: Sequence[WindowJob], streams: int) -> tuple[float, list[float]]:
    """``streams`` threads each submit their next window when the previous one returned; wall time and latencies."""
    lock = threading.Lock()
    queue = list(jobs)
    latencies: list[float] = []

    def stream() -> None:
        while True:
            with lock:
                if not queue:
                    return
                job = queue.pop(0)
            tick = time.perf_counter()
            pool.submit(job).result()
            with lock:
                latencies.append(time.perf_counter() - tick)

    threads = [threading.Thread(target=stream, daemon=True) for _ in range(streams)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began, latencies
