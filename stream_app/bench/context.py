"""`stream-app bench context`: fitted vs full encoder context on the same live windows.

Synthetic corpora (espeak-ng voices, pauses, one long silence; one corpus per seed, pooled: a single
small corpus leaves a WER difference of about a point to chance) are cut into windows the way the
live path cuts it (`stream_app.bench.live_windows`). One loaded model transcribes every window twice,
through the service's batched path: with the full 30 s encoder context and with the fitted context
(the window's frames plus a margin, guards, full-context re-runs included in its time). The two
passes alternate batch by batch, so machine load falls on both alike. Each side's window
transcripts are merged by the worker's `SegmentMerger` and scored with WER against the corpus text.

``--margins 0.5,1,2`` measures several margins on the same windows (one table row each); the
summary and its JSON describe the first.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from stream_app.bench.common import BENCH_HOME
from stream_app.bench.live_windows import StreamWindows, cut_windows, live_config, merge_policy, merged_text
from stream_app.bench.report import emit
from stream_app.config import Settings
from stream_app.inference.context import FULL_CONTEXT, EncoderContext
from stream_app.inference.guards import DecodeGuards
from stream_app.inference.registry import build_transcriber, model_key
from stream_app.inference.replicas import plan_replicas
from stream_app.inference.transcriber import WhisperTranscriber
from stream_app.inference.types import WindowJob, WindowTranscript
from stream_app.testing.corpus import build_corpus
from stream_app.testing.wer import corpus_wer

GOALS = "cost_ratio <= 0.5, wer_delta <= 0.005"

Results = dict[tuple[str, int], WindowTranscript]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the context benchmark."""
    parser.add_argument("--files", type=int, default=6, help="corpus files, one voice each (default 6)")
    parser.add_argument("--sentences", type=int, default=8, help="sentences per file (default 8)")
    parser.add_argument(
        "--seeds", default="7,11,13", help="corpus seeds, comma-separated: one corpus each, pooled (default 7,11,13)"
    )
    parser.add_argument("--window", type=float, default=10.0, help="window length in seconds (default 10)")
    parser.add_argument(
        "--margins", default="", help="comma-separated margins in seconds (default optimization.context_margin)"
    )
    parser.add_argument("--bucket", type=float, default=0.0, help="bucket in seconds (default optimization's)")
    parser.add_argument("--batch", type=int, default=1, help="windows per model call (default 1, as one live stream)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Transcribe the same windows with full and fitted context and print cost, WER and fallbacks."""
    started = time.monotonic()
    opt = settings.optimization
    margins = [float(m) for m in str(args.margins).split(",") if m.strip()] or [opt.context_margin]
    bucket = args.bucket or opt.context_bucket
    contexts = [EncoderContext("fitted", margin, bucket) for margin in margins]
    seeds = [int(seed) for seed in str(args.seeds).split(",") if seed.strip()]
    config = live_config(settings, args.window)
    corpus, streams = [], []
    for seed in seeds:
        items = build_corpus(BENCH_HOME, files=args.files, sentences_per_file=args.sentences, seed=seed)
        corpus.extend(items)
        streams.extend(cut_windows(items, config, prefix=f"ctx{seed}"))
    jobs = [job for stream in streams for job in stream.jobs()]
    key = model_key(settings)
    threads = plan_replicas(1, key.device, intra_threads=settings.parallel.intra_threads)[0].cpu_threads
    transcriber = build_transcriber(settings, key, cpu_threads=threads)
    try:
        for context in [FULL_CONTEXT, *contexts]:  # warm-up, not counted
            transcriber.transcribe_windows(jobs[:1], context)
        seconds, results = _decode_alternating(transcriber, jobs, [FULL_CONTEXT, *contexts], max(1, args.batch))
    finally:
        transcriber.close()

    references = [stream.item.reference for stream in streams]
    policy = merge_policy(settings)
    full_text = [merged_text(s, _lookup(s, results[0]), policy) for s in streams]
    full_wer = corpus_wer(references, full_text)
    rows = [_row("full", seconds[0], seconds[0], results[0], full_wer, full_wer)]
    for context, spent, found in zip(contexts, seconds[1:], results[1:], strict=True):
        texts = [merged_text(s, _lookup(s, found), policy) for s in streams]
        rows.append(_row(context.describe(), spent, seconds[0], found, corpus_wer(references, texts), full_wer))
        rows[-1]["same_text"] = sum(found[k].text == results[0][k].text for k in found)
    first = rows[1]
    summary: dict[str, Any] = {
        "cost_ratio": first["cost_ratio"],
        "wer_delta": first["wer_delta"],
        "fallbacks": first["fallbacks"],
        "fallback_reasons": first["reasons"],
        "fitted_wer": first["wer"],
        "full_wer": rows[0]["wer"],
        "fitted_decode_s": first["decode_s"],
        "full_decode_s": rows[0]["decode_s"],
        "margin_s": margins[0],
        "bucket_s": bucket,
        "window_s": args.window,
        "windows": len(jobs),
        "batch": max(1, args.batch),
        "files": len(corpus),
        "audio_s": round(sum(item.duration for item in corpus), 1),
        "seeds": ",".join(str(seed) for seed in seeds),
        "model": key.model,
        "precision": key.precision,
        "device": key.device,
        "cpu_threads": threads,
        "decode": _decode_note(settings),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "wall_s": round(time.monotonic() - started, 1),
        "goals": GOALS,
        "rows": rows,
    }
    emit("context: fitted vs full encoder context, same live windows, same model", rows, summary, as_json=args.json)
    return 0


def _decode_alternating(
    transcriber: WhisperTranscriber, jobs: Sequence[WindowJob], contexts: Sequence[EncoderContext], batch: int
) -> tuple[list[float], list[Results]]:
    """Decode every batch with every context in turn (the order rotating per batch); seconds and results."""
    seconds = [0.0] * len(contexts)
    results: list[Results] = [{} for _ in contexts]
    for n, begin in enumerate(range(0, len(jobs), batch)):
        group = list(jobs[begin : begin + batch])
        order = [(n + k) % len(contexts) for k in range(len(contexts))]
        for side in order:
            tick = time.perf_counter()
            out = transcriber.transcribe_windows(group, contexts[side])
            seconds[side] += time.perf_counter() - tick
            for job, result in zip(group, out, strict=True):
                results[side][(job.stream_id, job.window_index)] = result
    return seconds, results


def _lookup(stream: StreamWindows, results: Results) -> Any:
    def transcript(window: Any) -> WindowTranscript:
        return results[(stream.stream_id, window.index)]

    return transcript


def _row(name: str, spent: float, full_spent: float, results: Results, wer: float, full_wer: float) -> dict[str, Any]:
    reasons = Counter(r.context_fallback for r in results.values() if r.context_fallback is not None)
    frames = [r.extra.get("encoder_frames", 0.0) for r in results.values() if not r.skipped_silence]
    return {
        "context": name,
        "decode_s": round(spent, 2),
        "cost_ratio": round(spent / full_spent, 3) if full_spent > 0 else None,
        "wer": round(wer, 4),
        "wer_delta": round(wer - full_wer, 4),
        "fallbacks": sum(reasons.values()),
        "reasons": ",".join(f"{k}={v}" for k, v in sorted(reasons.items())) or "-",
        "mean_frames": round(sum(frames) / len(frames)) if frames else 0,
        "same_text": len(results),
    }


def _decode_note(settings: Settings) -> str:
    s = settings.streaming
    return (
        f"batched path both sides: beam_size={s.beam_size} language={s.language} vad={s.vad} "
        f"no_speech={s.no_speech_threshold} logprob={s.log_prob_threshold} "
        f"compression={s.compression_ratio_threshold} temperatures={DecodeGuards().temperatures} "
        "word_timestamps=True no prompt"
    )
