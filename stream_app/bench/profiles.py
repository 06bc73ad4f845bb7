"""`stream-app bench profiles`: choices of the live rule compared on the same speech, in process, in minutes.

Each variant (commit step, commit lookahead, window sizes, pauses, previews, ...) runs every corpus
file as one stream through the real streaming code (`StreamSession`: buffer, Silero VAD, planner and
merger) and the real model (`InferenceEngine`, the configured model, precision and encoder context,
cache off). Arrival is simulated in real time (100 ms chunks), a stream runs one step at a time as in
the worker, and each step takes the inference time it really took on this machine, so the lags are
those of one stream alone on an otherwise idle worker (no Kafka, no other streams: `bench latency`
and `bench capacity` measure those). Printed per variant: streamed WER against the whole-file WER of
faster-whisper on the same files (`reference_options`), the worst file's difference, boundary
repeats, emission and final lag percentiles, and inference seconds per audio second.

This is how the ``live`` profile was chosen (docs/benchmarks/streaming.md); a variant is a JSON object
``{"name", "live": {LiveConfig.from_seconds arguments}, "merge": {MergePolicy fields}}``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from stream_app.audio.files import decode_audio_file
from stream_app.bench.common import BENCH_HOME, whole_file_texts, without_cache
from stream_app.bench.report import emit, percentile
from stream_app.config import Settings
from stream_app.inference.engine import InferenceEngine
from stream_app.inference.vad import SpeechDetector
from stream_app.streaming import LiveConfig, MergePolicy, StreamSession
from stream_app.testing.corpus import CorpusItem, build_corpus
from stream_app.testing.wer import boundary_repeats, corpus_wer, word_error_rate
from stream_app.wire.chunk import SAMPLE_RATE, AudioChunk
from stream_app.wire.segment import TranscriptSegment
from stream_app.worker.profile import live_config_for, merge_policy_for

CHUNK = 1600  # 100 ms

# The variants measured while choosing the live profile; `--variants FILE` replaces them.
VARIANTS: list[dict[str, Any]] = [
    {"name": "live (the configured rule)", "live": {}},
    {
        "name": "forced, 2 s context, pauses 0.4 s, lookahead 1 s (the rule before)",
        "live": {"force_final_words": True, "decode_context": 2.0, "utterance_pause": 0.4, "commit_lookahead": 1.0},
        "merge": {"settle_after": 0},
    },
    {"name": "free, 2 s context", "live": {"decode_context": 2.0}},
    {"name": "pauses at 0.4 s commit", "live": {"utterance_pause": 0.4}},
    {"name": "commit lookahead 1 s", "live": {"commit_lookahead": 1.0}},
    {"name": "windows of 8-12 s", "live": {"min_window": 8.0, "max_window": 12.0}},
    {"name": "finals at cuts only (throughput)", "live": {"commit_step": 0, "preview_step": 0}},
    {"name": "LocalAgreement-2 alone (no settling)", "merge": {"settle_after": 0}},
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the profiles benchmark."""
    parser.add_argument("--seeds", default="7,11,13", help="corpus seeds, pooled (default 7,11,13: 18 files)")
    parser.add_argument("--files", type=int, default=6, help="files per corpus (one voice each)")
    parser.add_argument("--sentences", type=int, default=8, help="sentences per file")
    parser.add_argument("--variants", type=Path, help="a JSON list of variants instead of the built-in ones")
    parser.add_argument("--only", default="", help="comma-separated indexes of the variants to run (default all)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run every variant on the pooled corpus and print one row each."""
    started = time.monotonic()
    variants = orjson.loads(args.variants.read_bytes()) if args.variants else VARIANTS
    if args.only:
        variants = [variants[int(i)] for i in str(args.only).split(",")]
    corpus: list[CorpusItem] = []
    for seed in (int(s) for s in str(args.seeds).split(",")):
        corpus += build_corpus(BENCH_HOME, files=args.files, sentences_per_file=args.sentences, seed=seed)
    references = [item.reference for item in corpus]
    whole = whole_file_texts(settings, [item.path for item in corpus])
    whole_wer = corpus_wer(references, whole)  # the summary's; each row compares file by file too
    engine = InferenceEngine(without_cache(settings), use_cache=False)
    engine.start()
    base, base_policy = live_config_for(settings), merge_policy_for(settings)
    rows: list[dict[str, Any]] = []
    try:
        for variant in variants:
            rows.append(_variant(engine, corpus, variant, whole, base, base_policy))
    finally:
        engine.close()
    summary: dict[str, Any] = {
        "files": len(corpus),
        "audio_s": round(sum(item.duration for item in corpus), 1),
        "whole_file_wer": round(whole_wer, 4),
        "model": settings.optimization.model,
        "precision": settings.optimization.default_precision,
        "encoder_context": settings.optimization.encoder_context,
        "lags": "one stream alone, real-time arrival simulated, each step as long as its inference took here",
        "wall_s": round(time.monotonic() - started, 1),
        "rows": rows,
    }
    emit("profiles: streamed WER, lags and cost of streaming variants, same corpus", rows, summary, as_json=args.json)
    return 0


def _variant(
    engine: InferenceEngine,
    corpus: Sequence[CorpusItem],
    variant: dict[str, Any],
    whole: Sequence[str],
    base: LiveConfig,
    base_policy: MergePolicy,
) -> dict[str, Any]:
    arguments = {**_seconds(base), **variant.get("live", {})}
    config = LiveConfig.from_seconds(**arguments)
    merge = {"commit_lookahead": arguments["commit_lookahead"], **variant.get("merge", {})}
    policy = replace(base_policy, **merge)
    detector = SpeechDetector()
    texts: list[str] = []
    emission: list[float] = []
    final: list[float] = []
    busy = 0.0
    passes = 0
    for item in corpus:
        result = _stream(engine, detector, item, config, policy)
        texts.append(result["text"])
        emission += result["emission"]
        final += result["final"]
        busy += result["busy"]
        passes += result["passes"]
    references = [item.reference for item in corpus]
    wer = corpus_wer(references, texts)
    audio = sum(item.duration for item in corpus)
    deltas = [word_error_rate(r, t) - word_error_rate(r, w) for r, t, w in zip(references, texts, whole, strict=True)]
    worst = max(deltas)
    worst_file = corpus[deltas.index(worst)]
    return {
        "variant": variant["name"],
        "streamed_wer": round(wer, 4),
        "delta": round(wer - corpus_wer(references, list(whole)), 4),
        "max_file_delta": round(worst, 4),
        "worst_file": f"{worst_file.path.parent.name}/{worst_file.path.stem} ({worst_file.voice})",
        "repeats": sum(boundary_repeats(r, t) for r, t in zip(references, texts, strict=True)),
        "emission_p50_s": round(percentile(emission, 50), 2),
        "emission_p95_s": round(percentile(emission, 95), 2),
        "final_p50_s": round(percentile(final, 50), 2),
        "final_p95_s": round(percentile(final, 95), 2),
        "inference_s_per_audio_s": round(busy / audio, 3),
        "decodes": passes,
    }


def _seconds(config: LiveConfig) -> dict[str, Any]:
    """Return the rule's durations in seconds and its decoding choice (arguments of `LiveConfig.from_seconds`)."""
    names = (
        "speech_lead",
        "speech_tail",
        "utterance_pause",
        "long_pause",
        "min_window",
        "max_window",
        "min_speech",
        "commit_step",
        "commit_lookahead",
        "commit_step_growth",
        "preview_step",
        "min_decode",
        "decode_context",
        "preview_context",
    )
    seconds: dict[str, Any] = {name: getattr(config, name) / SAMPLE_RATE for name in names}
    seconds["force_final_words"] = config.force_final_words
    return seconds


def _stream(
    engine: InferenceEngine, detector: SpeechDetector, item: CorpusItem, config: LiveConfig, policy: MergePolicy
) -> dict[str, Any]:
    """One file as one real-time stream on a simulated clock; steps take their real inference time."""
    audio = decode_audio_file(item.path)
    session = StreamSession("s", config, policy)
    state = {"free_at": 0.0, "shown": 0.0, "busy": 0.0, "passes": 0}
    emission: list[float] = []
    final: list[float] = []
    finals: dict[tuple[str, int], TranscriptSegment] = {}

    def step(now: float) -> None:
        _, samples = session.speech_needed()
        if samples.shape[0]:
            session.add_speech(*detector(samples, session.track.model_state))
        plan = session.plan(previews=True)
        segments: list[TranscriptSegment] = list(plan.segments)
        spent = 0.0
        if plan.request is not None:
            begin = time.perf_counter()
            result = engine.transcribe_blocking(plan.request.job("s"))
            spent = time.perf_counter() - begin
            state["passes"] += 1
            segments += session.complete(plan.request, result)
        state["busy"] += spent
        state["free_at"] = now + spent
        for segment in segments:
            for word in segment.words:
                lag = state["free_at"] - word.end
                if word.end > state["shown"]:
                    emission.append(lag)
                if segment.is_final:
                    final.append(lag)
            if segment.words:
                state["shown"] = max(state["shown"], segment.words[-1].end)
            if segment.is_final:
                finals[(segment.session, segment.index)] = segment

    offsets = range(0, len(audio), CHUNK)
    for seq, offset in enumerate(offsets):
        chunk = AudioChunk("s", seq, offset, audio[offset : offset + CHUNK], end_of_stream=offset + CHUNK >= len(audio))
        arrival = (offset + chunk.samples.shape[0]) / SAMPLE_RATE
        for _ in range(1000):  # the model finished before this chunk: the stream catches up on what it had
            if not (0 < state["free_at"] <= arrival and session.has_work()):
                break
            step(state["free_at"])
        session.feed(chunk)
        if state["free_at"] <= arrival:
            step(arrival)
    for _ in range(100_000):
        if session.finished:
            break
        step(max(state["free_at"], len(audio) / SAMPLE_RATE))
    text = " ".join(finals[k].text for k in sorted(finals) if finals[k].text)
    return {"text": text, "emission": emission, "final": final, "busy": state["busy"], "passes": state["passes"]}
