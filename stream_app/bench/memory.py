"""`stream-app bench memory`: feature buffers of the batched path, and a live model switch round trip.

Part one: the batched path with reused feature buffers vs fresh ones per window.

Each mode runs in its own subprocess (``python -m stream_app.bench.memory --child reuse|fresh``) so
its RSS growth belongs to it alone and glibc's arenas start equal. A child loads the configured
model, warms up on one batch, then transcribes the same N windows (10 s cuts of the synthetic
corpus) in batches through ``WhisperTranscriber.transcribe_windows`` under ``tracemalloc``. Python
and numpy allocations are traced; CTranslate2's native memory is not, and shows only in RSS.

Part two (`stream_app.bench.switch_memory`): RSS across ``models switch`` to ``--switch-to`` and back,
with and without handing the retired model's freed memory back to the system.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from stream_app.audio.files import decode_audio_file
from stream_app.bench.report import emit
from stream_app.bench.switch_memory import MODES as SWITCH_MODES
from stream_app.bench.switch_memory import run_child
from stream_app.config import Settings, expand_path
from stream_app.testing.corpus import SAMPLE_RATE, build_corpus

BENCH_HOME = Path("~/.cache/stream-app/bench").expanduser()
MB = 2**20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options."""
    parser.add_argument("--windows", type=int, default=40, help="windows transcribed per mode")
    parser.add_argument("--seconds", type=float, default=10.0, help="window length")
    parser.add_argument("--batch", type=int, default=0, help="windows per batched call (0: parallel.max_batch)")
    parser.add_argument("--model", default="", help="model (default: optimization.model)")
    parser.add_argument("--precision", default="", help="precision (default: optimization.default_precision)")
    parser.add_argument("--switch-to", default="base", help="model of the switch round trip (default base)")
    parser.add_argument("--switch-windows", type=int, default=16, help="windows transcribed on each model")
    parser.add_argument("--no-switch", action="store_true", help="leave the switch round trip out")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run both modes in fresh processes and print them side by side."""
    build_corpus(BENCH_HOME, files=4, sentences_per_file=6)  # built once here, not in each child
    batch = args.batch or settings.parallel.max_batch
    model = args.model or settings.optimization.model
    precision = args.precision or settings.optimization.default_precision
    rows = [_child(mode, args.windows, args.seconds, batch, model, precision) for mode in ("reuse", "fresh")]
    reuse, fresh = rows
    switch_rows = []
    if not args.no_switch:
        switch_rows = [
            run_child(mode, args.switch_windows, args.seconds, model, args.switch_to) for mode in SWITCH_MODES
        ]
    summary: dict[str, Any] = {
        "model": model,
        "precision": precision,
        "windows": args.windows,
        "window_seconds": args.seconds,
        "batch": batch,
        "rows": rows,
        "alloc_mb_per_window_reuse": reuse["alloc_mb_per_window"],
        "alloc_mb_per_window_fresh": fresh["alloc_mb_per_window"],
        "peak_mb_reuse": reuse["peak_mb"],
        "peak_mb_fresh": fresh["peak_mb"],
        "rss_growth_mb_reuse": reuse["rss_growth_mb"],
        "rss_growth_mb_fresh": fresh["rss_growth_mb"],
        "same_text": reuse["text_digest"] == fresh["text_digest"],
        "switch_rows": switch_rows,
        **{f"round_trip_growth_mb_{r['mode']}": r["round_trip_growth_mb"] for r in switch_rows},
        **{f"peak_mb_round_trip_{r['mode']}": r["peak_mb"] for r in switch_rows},
    }
    if switch_rows:
        emit(
            f"memory: {model} -> {args.switch_to} -> {model} live switch, "
            f"{args.switch_windows} windows on each model, RSS in MB",
            switch_rows,
            {},
            as_json=False,
        )
    emit(
        f"memory: batched path, {args.windows} x {args.seconds:g} s windows, batch {batch}",
        rows,
        summary,
        as_json=args.json,
    )
    return 0 if summary["same_text"] else 1


def _child(mode: str, windows: int, seconds: float, batch: int, model: str, precision: str) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "stream_app.bench.memory", "--child", mode, "--windows", str(windows),
        "--seconds", str(seconds), "--batch", str(batch), "--model", model, "--precision", precision,
    ]  # fmt: skip
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    row: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return row


def corpus_windows(count: int, seconds: float) -> list[np.ndarray]:
    """``count`` cuts of ``seconds`` from the corpus files, in order, cycling over them."""
    size = round(seconds * SAMPLE_RATE)
    cuts: list[np.ndarray] = []
    for item in build_corpus(BENCH_HOME, files=4, sentences_per_file=6):
        audio = decode_audio_file(item.path)
        cuts += [audio[i : i + size] for i in range(0, audio.shape[0] - size + 1, size)]
    return [cuts[i % len(cuts)] for i in range(count)]


def measure(mode: str, windows: int, seconds: float, batch: int, model: str, precision: str) -> dict[str, Any]:
    """Transcribe the windows in one mode; return traced allocation figures and RSS growth."""
    from stream_app.config import load_settings
    from stream_app.inference.models import resolve_model
    from stream_app.inference.transcriber import DecodeGuards, WhisperTranscriber
    from stream_app.inference.types import WindowJob

    settings = load_settings()
    transcriber = WhisperTranscriber(
        resolve_model(model, expand_path(settings.optimization.model_cache_dir)),
        model_name=model,
        precision=precision,
        cpu_threads=settings.parallel.intra_threads,
        vad=False,  # every window reaches the batched decoder: this measures its buffers, not Silero's
        guards=DecodeGuards(temperatures=(0.0,)),  # no sampled retries: both modes decode the same, once
        reuse_buffers=mode == "reuse",
    )
    jobs = [WindowJob(f"s{i}", 0, 0.0, audio) for i, audio in enumerate(corpus_windows(windows, seconds))]
    batches = [jobs[i : i + batch] for i in range(0, len(jobs), batch)]
    transcriber.transcribe_windows(batches[0])  # warm-up: model caches, tokenizer, this thread's buffers
    process = psutil.Process()
    rss_before = process.memory_info().rss
    peaks: list[int] = []
    texts: list[str] = []
    tracemalloc.start()
    start_traced = tracemalloc.get_traced_memory()[0]
    for group in batches:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        texts += [r.text for r in transcriber.transcribe_windows(group)]
        peaks.append(tracemalloc.get_traced_memory()[1] - base)
    retained = tracemalloc.get_traced_memory()[0] - start_traced
    tracemalloc.stop()
    rss_after = process.memory_info().rss
    # tracemalloc has no cumulative counter: the high-water mark above each call's start is what a
    # call allocates at once; summed over the calls and spread over the windows it is the per-window figure.
    return {
        "mode": mode,
        "alloc_mb_per_window": sum(peaks) / len(jobs) / MB,
        "peak_mb": max(peaks) / MB,
        "retained_mb": retained / MB,
        "rss_before_mb": rss_before / MB,
        "rss_growth_mb": (rss_after - rss_before) / MB,
        "text_digest": hashlib.sha1("\n".join(texts).encode()).hexdigest()[:12],
    }


def main() -> None:
    """Child entry point: measure one mode and print one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=("reuse", "fresh"), required=True)
    parser.add_argument("--windows", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--precision", required=True)
    a = parser.parse_args()
    print(json.dumps(measure(a.child, a.windows, a.seconds, a.batch, a.model, a.precision)))


if __name__ == "__main__":
    main()
