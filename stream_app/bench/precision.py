"""`stream-app bench precision`: speed, accuracy and memory per model and precision, adaptive mode, worker RSS.

Every configuration runs in a fresh subprocess (``python -m stream_app.bench.precision --child``),
so its peak RSS and the RSS growth while loading the model belong to it alone. Each child
transcribes the same synthetic corpus with faster-whisper, whole files, greedy decoding. Adaptive
precision runs through the service's `InferenceEngine` on 30 s windows, next to the same engine at
fixed int8 and fixed float32. Last, a real ``stream-app worker`` serves 4 streams with base int8
while its RSS is sampled.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import ctranslate2
import psutil

from stream_app.bench.report import emit, format_table
from stream_app.config import Settings, expand_path
from stream_app.inference.precision import device_kind
from stream_app.testing.corpus import SAMPLE_RATE, CorpusItem, build_corpus

BENCH_HOME = Path("~/.cache/stream-app/bench").expanduser()
ORDER = ("float32", "int8_float32", "int8", "float16", "bfloat16", "int8_float16", "int8_bfloat16")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options."""
    parser.add_argument("--models", default="tiny.en,base", help="comma-separated models")
    parser.add_argument("--files", type=int, default=4, help="corpus files (about 35 s each)")
    parser.add_argument("--adaptive-models", default="tiny.en", help="models for the adaptive comparison ('' skips)")
    parser.add_argument("--no-worker", action="store_true", help="skip the worker RSS run")
    parser.add_argument("--streams", type=int, default=4, help="streams in the worker RSS run")
    parser.add_argument(
        "--worker-max-batch", default="8,1", help="comma-separated parallel.max_batch values for worker RSS runs"
    )
    parser.add_argument(
        "--strict-threshold",
        type=float,
        default=-0.3,
        help="a stricter log-probability threshold for a second adaptive row, so escalations happen",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Measure every configuration in its own process and print the comparison."""
    corpus = build_corpus(BENCH_HOME, files=args.files, sentences_per_file=6)
    audio_seconds = sum(item.duration for item in corpus)
    device = device_kind(settings.optimization.device)
    supported = [p for p in ORDER if p in {str(t) for t in ctranslate2.get_supported_compute_types(device)}]
    models = [m for m in args.models.split(",") if m]
    print(f"corpus: {len(corpus)} files, {audio_seconds:.1f} s of audio; {device} precisions: {', '.join(supported)}")
    rows = [_child(settings, corpus, "fixed", model, precision) for model in models for precision in supported]
    by_model: dict[str, dict[str, float]] = {}
    for model in models:
        base = next(r for r in rows if r["model"] == model and r["precision"] == "float32")
        for row in (r for r in rows if r["model"] == model):
            row["rtf_vs_f32"] = row["rtf"] / base["rtf"]
            row["model_mb_vs_f32"] = row["model_mb"] / base["model_mb"]
            row["peak_rss_vs_f32"] = row["peak_rss_mb"] / base["peak_rss_mb"]
            row["wer_vs_f32"] = row["wer"] - base["wer"]
        int8 = next((r for r in rows if r["model"] == model and r["precision"] == "int8"), None)
        if int8 is not None:
            by_model[model] = {
                "int8_speedup": base["rtf"] / int8["rtf"],
                "int8_wer_delta_rel": _relative(int8["wer"], base["wer"]),
                "int8_memory_saving": 1.0 - int8["model_mb"] / base["model_mb"],
            }
    threshold = settings.optimization.adaptive_logprob_threshold
    adaptive = [
        _child(settings, corpus, mode, model, precision, threshold=limit)
        for model in [m for m in args.adaptive_models.split(",") if m]
        for mode, precision, limit in (
            ("engine", "int8", threshold),
            ("engine", "float32", threshold),
            ("adaptive", "int8", threshold),
            ("adaptive", "int8", args.strict_threshold),
        )
    ]
    batches = [] if args.no_worker else [int(b) for b in args.worker_max_batch.split(",") if b]
    workers = [_worker_rss(settings, corpus, args.streams, batch) for batch in batches]
    summary: dict[str, Any] = {
        "audio_seconds": audio_seconds,
        "rows": rows,
        "adaptive_rows": adaptive,
        "by_model": by_model,
    }
    if by_model:  # the headline figures are the worst model's
        summary["int8_speedup"] = min(v["int8_speedup"] for v in by_model.values())
        summary["int8_wer_delta_rel"] = max(v["int8_wer_delta_rel"] for v in by_model.values())
        summary["int8_memory_saving"] = min(v["int8_memory_saving"] for v in by_model.values())
    if workers:
        summary["worker_rows"] = workers
        summary["worker_peak_rss_mb"] = workers[0]["worker_peak_rss_mb"]
        print("== worker serving streams (base int8, real stream-app worker)")
        print(format_table(workers))
        print()
    if adaptive:
        print("== adaptive precision (InferenceEngine, 30 s windows)")
        columns = ["model", "mode", "precision", "threshold", "rtf", "wer", "escalated", "windows", "peak_rss_mb"]
        print(format_table(adaptive, columns))
        print()
    emit("precision (faster-whisper, whole files, fresh process per row)", _table(rows), summary, as_json=args.json)
    return 0


def _relative(value: float, reference: float) -> float:
    return (value - reference) / reference if reference > 0 else value - reference


def _table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cols = ["model", "precision", "rtf", "rtf_vs_f32", "wer", "wer_vs_f32", "model_mb", "model_mb_vs_f32"]
    return [{c: r.get(c) for c in [*cols, "peak_rss_mb", "peak_rss_vs_f32"]} for r in rows]


def _child(
    settings: Settings,
    corpus: list[CorpusItem],
    mode: str,
    model: str,
    precision: str,
    *,
    threshold: float | None = None,
) -> dict[str, Any]:
    """Run one configuration in a fresh interpreter and return its row."""
    spec: dict[str, Any] = {"mode": mode, "model": model, "precision": precision, "threshold": threshold}
    spec["files"] = [str(i.path) for i in corpus]
    spec["references"] = [i.reference for i in corpus]
    spec["cache_dir"] = str(expand_path(settings.optimization.model_cache_dir))
    spec["device"] = device_kind(settings.optimization.device)
    command = [sys.executable, "-m", "stream_app.bench.precision", "--child", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} {model} {precision} failed:\n{done.stderr[-3000:]}")
    row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  {mode:<9} {model:<8} {precision:<13} rtf {row['rtf']:.3f}  wer {row['wer']:.3f}", flush=True)
    return row


# ---- the child side ---------------------------------------------------------------------------


def _rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def _peak_rss_mb() -> float:
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024  # KiB on Linux


def _child_main(spec: dict[str, Any]) -> dict[str, Any]:
    from stream_app.audio.files import decode_audio_file
    from stream_app.testing.wer import corpus_wer

    audios = [decode_audio_file(Path(f)) for f in spec["files"]]
    seconds = sum(a.shape[0] for a in audios) / SAMPLE_RATE
    row = _fixed(spec, audios) if spec["mode"] == "fixed" else _engine(spec, audios)
    row.update(
        mode=spec["mode"],
        model=spec["model"],
        precision=spec["precision"],
        rtf=row["seconds"] / seconds,
        wer=corpus_wer(spec["references"], row.pop("texts")),
        peak_rss_mb=_peak_rss_mb(),
    )
    return row


def _fixed(spec: dict[str, Any], audios: list[Any]) -> dict[str, Any]:
    from faster_whisper import WhisperModel

    from stream_app.inference.models import resolve_model

    path = resolve_model(spec["model"], Path(spec["cache_dir"]))
    before = _rss_mb()
    model = WhisperModel(str(path), device=spec["device"], compute_type=spec["precision"], local_files_only=True)
    loaded = _rss_mb() - before
    texts = []
    started = time.perf_counter()
    for audio in audios:
        segments, _ = model.transcribe(audio, language="en", beam_size=1, condition_on_previous_text=False)
        texts.append(" ".join(s.text.strip() for s in segments))
    return {"seconds": time.perf_counter() - started, "texts": texts, "model_mb": loaded}


def _engine(spec: dict[str, Any], audios: list[Any]) -> dict[str, Any]:
    from stream_app.config import load_settings
    from stream_app.inference.engine import InferenceEngine
    from stream_app.inference.types import WindowJob

    settings = load_settings(env={})
    opt = dataclasses.replace(
        settings.optimization,
        model=spec["model"],
        device=spec["device"],
        default_precision=spec["precision"],
        adaptive_quantization=spec["mode"] == "adaptive",
        precision_ceiling="float32",
        adaptive_logprob_threshold=spec["threshold"],
    )
    engine = InferenceEngine(dataclasses.replace(settings, optimization=opt), use_cache=False)
    engine.start()
    texts, escalated, windows = [], 0, 0
    step = 30 * SAMPLE_RATE
    started = time.perf_counter()
    try:
        for n, audio in enumerate(audios):
            words = []
            for index, offset in enumerate(range(0, audio.shape[0], step)):
                job = WindowJob(f"f{n}", index, offset / SAMPLE_RATE, audio[offset : offset + step])
                result = engine.transcribe_blocking(job)
                windows += 1
                escalated += result.escalated_from is not None
                words.append(result.text.strip())
            texts.append(" ".join(words))
        seconds = time.perf_counter() - started
    finally:
        engine.close()
    return {
        "seconds": seconds,
        "texts": texts,
        "escalated": escalated,
        "windows": windows,
        "threshold": spec["threshold"],
    }


# ---- a real worker ----------------------------------------------------------------------------


def _worker_rss(settings: Settings, corpus: list[CorpusItem], streams: int, max_batch: int) -> dict[str, Any]:
    """Serve ``streams`` streams with base int8 in a real worker and report its peak RSS."""
    from stream_app.testing.service import ServiceHarness

    env = {
        "STREAM_APP_OPTIMIZATION__MODEL": "base",
        "STREAM_APP_OPTIMIZATION__DEFAULT_PRECISION": "int8",
        "STREAM_APP_PARALLEL__MAX_BATCH": str(max_batch),
        # only the worker's own memory tier: shared tiers would answer a repeat run from an earlier one
        "STREAM_APP_CACHING__CACHE_LEVELS": "memory",
    }
    peak = {"rss": 0}
    stop = threading.Event()
    with ServiceHarness(settings, env=env) as harness:
        replica = harness.start("r1", wait=300)
        assert replica.process is not None
        process = psutil.Process(replica.process.pid)

        def sample() -> None:
            while not stop.is_set():
                try:
                    procs = [process, *process.children(recursive=True)]
                    peak["rss"] = max(peak["rss"], sum(p.memory_info().rss for p in procs))
                except psutil.Error:
                    pass
                stop.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        idle_mb = process.memory_info().rss / 2**20
        ids = [f"rss-{i}" for i in range(streams)]
        started = time.monotonic()
        with harness.publisher() as publisher:
            for i, sid in enumerate(ids):
                publisher.publish_file(corpus[i % len(corpus)].path, sid, chunk_ms=250)
        collected = harness.collect(ids, timeout=900)
        stop.set()
        sampler.join()
        complete = sum(c.transcript.complete for c in collected.values())
    elapsed = time.monotonic() - started
    print(f"  worker base int8, max_batch {max_batch}: {complete}/{streams} streams complete in {elapsed:.0f} s")
    return {
        "max_batch": max_batch,
        "worker_seconds": elapsed,
        "worker_streams": streams,
        "worker_streams_complete": complete,
        "worker_idle_rss_mb": idle_mb,
        "worker_peak_rss_mb": peak["rss"] / 2**20,
    }


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(_child_main(json.loads(sys.argv[2]))))
