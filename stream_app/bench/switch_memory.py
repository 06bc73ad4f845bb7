"""`stream-app bench memory`, round trip: resident memory across a live switch to another model and back.

One child process (``python -m stream_app.bench.switch_memory``) per way of freeing memory, so each
starts with the same heaps: ``keep`` closes the retired model only (what the worker did before),
``trim`` also hands the allocator's free pages back (`release_free_memory`, what it does now), and
``trim_no_mkl_cache`` does so with MKL's buffer cache off (``MKL_DISABLE_FAST_MM=1``). A child
loads the first model as a worker does (`InferenceEngine`, ``parallel.max_workers`` replicas, no
cache), transcribes the same windows on each model in turn, switches with `InferenceEngine.switch`,
and reads its RSS after each step; the round trip should end where it started, not a model higher.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import psutil

MB = 2**20
MODES = ("keep", "trim", "trim_no_mkl_cache")
# MKL (linked into CTranslate2's wheel) keeps per-thread GEMM buffers; this mode turns that cache off to
# see how much of what trimming leaves is MKL's (not measured yet: the first run had keep and trim only).
MODE_ENV = {"trim_no_mkl_cache": {"MKL_DISABLE_FAST_MM": "1"}}
STREAMS = 4  # windows in flight at once, as from a few live streams


def run_child(mode: str, windows: int, seconds: float, first: str, second: str) -> dict[str, Any]:
    """Measure one way of freeing memory in a fresh process; return its row."""
    command = [
        sys.executable, "-m", "stream_app.bench.switch_memory", "--mode", mode, "--windows", str(windows),
        "--seconds", str(seconds), "--first", first, "--second", second,
    ]  # fmt: skip
    env = {**os.environ, **MODE_ENV.get(mode, {})}
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    row: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return row


def measure(mode: str, windows: int, seconds: float, first: str, second: str) -> dict[str, Any]:
    """Load ``first``, switch to ``second`` and back, transcribing ``windows`` windows on each; RSS per step."""
    from stream_app.bench.memory import corpus_windows
    from stream_app.config import load_settings
    from stream_app.inference.engine import InferenceEngine
    from stream_app.inference.native_memory import release_free_memory
    from stream_app.inference.replicas import replicas_registry
    from stream_app.inference.types import WindowJob

    settings = load_settings()
    registry = replicas_registry(settings, give_back=None if mode == "keep" else release_free_memory)
    engine = InferenceEngine(settings, registry=registry, use_cache=False)
    audio = corpus_windows(windows, seconds)
    process = psutil.Process()
    rss: dict[str, float] = {"before_load_mb": process.memory_info().rss / MB}

    def transcribe_all(step: str) -> None:
        jobs = [WindowJob(f"{step}-{i}", i, 0.0, np.asarray(a)) for i, a in enumerate(audio)]
        with ThreadPoolExecutor(STREAMS) as pool:
            list(pool.map(engine.transcribe_blocking, jobs))
        rss[f"{step}_mb"] = process.memory_info().rss / MB

    engine.start(first)
    rss["ready_mb"] = process.memory_info().rss / MB
    transcribe_all("first")
    asyncio.run(engine.switch(second))
    transcribe_all("second")
    asyncio.run(engine.switch(first))
    rss["back_mb"] = process.memory_info().rss / MB
    transcribe_all("round_trip")
    engine.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    return {
        "mode": mode,
        **{k: round(v, 1) for k, v in rss.items()},
        "peak_mb": round(peak, 1),
        "round_trip_growth_mb": round(rss["round_trip_mb"] - rss["first_mb"], 1),
        "budget_mb": settings.optimization.memory_budget / MB,
    }


def main() -> None:
    """Child entry point: measure one mode and print one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--windows", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--first", required=True)
    parser.add_argument("--second", required=True)
    a = parser.parse_args()
    print(json.dumps(measure(a.mode, a.windows, a.seconds, a.first, a.second)))


if __name__ == "__main__":
    main()
