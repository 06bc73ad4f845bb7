"""`stream-app bench context`: fitted vs full encoder context on the same live streams.

Synthetic corpora (espeak-ng voices, pauses, one long silence; one corpus per seed, pooled: a single
small corpus leaves a WER difference of about a point to chance) run through the live path in this
process (`stream_app.testing.live_run`: the worker's session, speech detector and merger) once per
context, on one loaded model: the full 30 s encoder context, and the fitted context (the window's
frames plus a margin, guards and full-context re-runs included in its time). The sides alternate
file by file, so machine load falls on both alike; each side's final transcript is scored with WER
against the corpus text, and its model time is summed over every decode the live path made.

``--margins 0.5,1,2`` measures several margins on the same streams (one table row each); the
summary and its JSON describe the first.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from stream_app.audio.files import decode_audio_file
from stream_app.bench.common import BENCH_HOME
from stream_app.bench.report import emit
from stream_app.config import Settings
from stream_app.inference.context import FULL_CONTEXT, EncoderContext
from stream_app.inference.guards import DecodeGuards
from stream_app.inference.registry import build_transcriber, model_key
from stream_app.inference.replicas import plan_replicas
from stream_app.inference.transcriber import WhisperTranscriber
from stream_app.inference.types import WindowJob, WindowTranscript
from stream_app.inference.vad import SpeechDetector
from stream_app.testing.corpus import CorpusItem, build_corpus
from stream_app.testing.live_run import LiveRun, run_recording
from stream_app.testing.wer import corpus_wer
from stream_app.worker.profile import live_config_for, merge_policy_for

GOALS = "cost_ratio <= 0.5, wer_delta <= 0.005"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the context benchmark."""
    parser.add_argument("--files", type=int, default=6, help="corpus files, one voice each (default 6)")
    parser.add_argument("--sentences", type=int, default=8, help="sentences per file (default 8)")
    parser.add_argument(
        "--seeds", default="7,11,13", help="corpus seeds, comma-separated: one corpus each, pooled (default 7,11,13)"
    )
    parser.add_argument(
        "--margins", default="", help="comma-separated margins in seconds (default optimization.context_margin)"
    )
    parser.add_argument("--bucket", type=float, default=0.0, help="bucket in seconds (default optimization's)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Transcribe the same windows with full and fitted context and print cost, WER and fallbacks."""
    started = time.monotonic()
    opt = settings.optimization
    margins = [float(m) for m in str(args.margins).split(",") if m.strip()] or [opt.context_margin]
    bucket = args.bucket or opt.context_bucket
    contexts = [EncoderContext("fitted", margin, bucket) for margin in margins]
    seeds = [int(seed) for seed in str(args.seeds).split(",") if seed.strip()]
    corpus: list[CorpusItem] = []
    for seed in seeds:
        corpus.extend(build_corpus(BENCH_HOME, files=args.files, sentences_per_file=args.sentences, seed=seed))
    key = model_key(settings)
    threads = plan_replicas(1, key.device, intra_threads=settings.parallel.intra_threads)[0].cpu_threads
    transcriber = build_transcriber(settings, key, cpu_threads=threads)
    sides = [FULL_CONTEXT, *contexts]
    try:
        seconds, runs = _run_alternating(settings, transcriber, corpus, sides)
    finally:
        transcriber.close()

    references = [item.reference for item in corpus]
    full_wer = corpus_wer(references, [run.text for run in runs[0]])
    rows = [_row("full", seconds[0], seconds[0], runs[0], full_wer, full_wer)]
    for context, spent, found in zip(contexts, seconds[1:], runs[1:], strict=True):
        rows.append(
            _row(
                context.describe(), spent, seconds[0], found, corpus_wer(references, [r.text for r in found]), full_wer
            )
        )
        rows[-1]["same_text"] = sum(a.text == b.text for a, b in zip(found, runs[0], strict=True))
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
        "decodes": first["decodes"],
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
    emit("context: fitted vs full encoder context, same live streams, same model", rows, summary, as_json=args.json)
    return 0


class _Timed:
    """A transcriber with one encoder context, adding up the seconds its calls take."""

    def __init__(self, transcriber: WhisperTranscriber, context: EncoderContext) -> None:
        self.transcriber, self.context, self.seconds = transcriber, context, 0.0
        self.results: list[WindowTranscript] = []

    def transcribe_windows(self, jobs: Sequence[WindowJob]) -> list[WindowTranscript]:
        tick = time.perf_counter()
        out = self.transcriber.transcribe_windows(jobs, self.context)
        self.seconds += time.perf_counter() - tick
        self.results.extend(out)
        return out


def _run_alternating(
    settings: Settings,
    transcriber: WhisperTranscriber,
    corpus: Sequence[CorpusItem],
    contexts: Sequence[EncoderContext],
) -> tuple[list[float], list[list[LiveRun]]]:
    """Stream every file once per context (the order rotating per file); model seconds and runs per context."""
    config, policy, detector = live_config_for(settings), merge_policy_for(settings), SpeechDetector()
    sides = [_Timed(transcriber, context) for context in contexts]
    runs: list[list[LiveRun]] = [[] for _ in contexts]
    warm = corpus[0].path

    for warm_side in sides:  # warm-up, not counted
        run_recording(
            decode_audio_file(warm)[: 16000 * 3], _Timed(transcriber, warm_side.context), detector, config, policy
        )
    for n, item in enumerate(corpus):
        samples = decode_audio_file(item.path)
        for k in range(len(sides)):
            index = (n + k) % len(sides)
            runs[index].append(run_recording(samples, sides[index], detector, config, policy, stream_id=f"ctx{n}"))
    return [side.seconds for side in sides], runs


def _row(
    name: str, spent: float, full_spent: float, runs: list[LiveRun], wer: float, full_wer: float
) -> dict[str, Any]:
    reasons: Counter[str] = Counter()
    decodes = sum(len(run.decodes) for run in runs)
    return {
        "context": name,
        "decode_s": round(spent, 2),
        "cost_ratio": round(spent / full_spent, 3) if full_spent > 0 else None,
        "wer": round(wer, 4),
        "wer_delta": round(wer - full_wer, 4),
        "fallbacks": sum(reasons.values()),
        "reasons": ",".join(f"{k}={v}" for k, v in sorted(reasons.items())) or "-",
        "decodes": decodes,
        "same_text": len(runs),
    }


def _decode_note(settings: Settings) -> str:
    s = settings.streaming
    return (
        f"batched path both sides: beam_size={s.beam_size} language={s.language} vad={s.vad} "
        f"no_speech={s.no_speech_threshold} logprob={s.log_prob_threshold} "
        f"compression={s.compression_ratio_threshold} temperatures={DecodeGuards().temperatures} "
        "word_timestamps=True, the live rule's decodes (ticks, pauses, cuts) with their forced prefixes"
    )
