"""`stream-app bench profiles`: streaming choices compared on the same speech, in process, in minutes.

Each variant (window length, previews, LocalAgreement-2 lookahead, left context, utterance cuts,
prompting, ...) runs every corpus file as one stream through the real streaming code
(`StreamSession`: buffer and merger) and the real model (`InferenceEngine`, the configured model,
precision and encoder context, cache off). Arrival is simulated in real time (100 ms chunks), a
stream runs one step at a time as in the worker, and each step takes the inference time it really
took on this machine, so the lags are those of one stream alone on an otherwise idle worker (no
Kafka, no other streams: `bench latency` measures those through the service). Printed per variant:
streamed WER against the whole-file WER of faster-whisper on the same files (`reference_options`),
boundary repeats, emission and final lag percentiles, and inference seconds per audio second.

This is how the ``live`` profile was chosen (docs/benchmarks/streaming.md); a variant is a JSON
object ``{"name", "window": {WindowingConfig.from_seconds arguments}, "merge": {MergePolicy fields}}``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from stream_app.audio.files import decode_audio_file
from stream_app.bench.common import BENCH_HOME, whole_file_texts, without_cache
from stream_app.bench.report import emit, percentile
from stream_app.config import Settings
from stream_app.inference.engine import InferenceEngine
from stream_app.streaming import MergePolicy, StreamSession, WindowingConfig
from stream_app.testing.corpus import CorpusItem, build_corpus
from stream_app.testing.wer import boundary_repeats, corpus_wer
from stream_app.wire.chunk import SAMPLE_RATE, AudioChunk
from stream_app.wire.segment import TranscriptSegment

CHUNK = 1600  # 100 ms

# The variants measured while choosing the live profile; `--variants FILE` replaces them.
VARIANTS: list[dict[str, Any]] = [
    {"name": "10s windows, no previews", "window": {"window": 10, "overlap": 1, "pause_search": 4}},
    {"name": "20s windows, no previews", "window": {"window": 20, "overlap": 1, "pause_search": 8}},
    {"name": "30s windows, no previews", "window": {"window": 30, "overlap": 2, "pause_search": 12}},
    {
        "name": "utterance cuts 0.4s, 10s left context",
        "window": {"window": 30, "overlap": 2, "pause_search": 12, "utterance_pause": 0.4, "left_context": 10},
    },
    {
        "name": "20s, previews 1s, no commits",
        "window": {"window": 20, "overlap": 1, "pause_search": 8, "interim": 1, "interim_min": 1},
        "merge": {"interim_commits": False},
    },
    {
        "name": "20s, previews 1s, LA-2 lookahead 1s",
        "window": {"window": 20, "overlap": 1, "pause_search": 8, "interim": 1, "interim_min": 1},
        "merge": {"commit_lookahead": 1.0},
    },
    {
        "name": "20s, previews 1s, LA-2 lookahead 2s",
        "window": {"window": 20, "overlap": 1, "pause_search": 8, "interim": 1, "interim_min": 1},
        "merge": {"commit_lookahead": 2.0},
    },
    {
        "name": "20s, previews 1s, LA-2 lookahead 2s, prompt 200",
        "window": {"window": 20, "overlap": 1, "pause_search": 8, "interim": 1, "interim_min": 1},
        "merge": {"commit_lookahead": 2.0, "prompt_chars": 200},
    },
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
    whole_wer = corpus_wer(references, whole)
    engine = InferenceEngine(without_cache(settings), use_cache=False)
    engine.start()
    rows: list[dict[str, Any]] = []
    try:
        for variant in variants:
            rows.append(_variant(engine, corpus, variant, whole_wer))
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
    engine: InferenceEngine, corpus: Sequence[CorpusItem], variant: dict[str, Any], whole: float
) -> dict[str, Any]:
    config = WindowingConfig.from_seconds(**variant["window"])
    policy = MergePolicy(**variant.get("merge", {}))
    texts: list[str] = []
    emission: list[float] = []
    final: list[float] = []
    busy = 0.0
    passes = 0
    for item in corpus:
        result = _stream(engine, item, config, policy)
        texts.append(result["text"])
        emission += result["emission"]
        final += result["final"]
        busy += result["busy"]
        passes += result["passes"]
    references = [item.reference for item in corpus]
    wer = corpus_wer(references, texts)
    audio = sum(item.duration for item in corpus)
    return {
        "variant": variant["name"],
        "streamed_wer": round(wer, 4),
        "delta": round(wer - whole, 4),
        "repeats": sum(boundary_repeats(r, t) for r, t in zip(references, texts, strict=True)),
        "emission_p50_s": round(percentile(emission, 50), 2),
        "emission_p95_s": round(percentile(emission, 95), 2),
        "final_p50_s": round(percentile(final, 50), 2),
        "final_p95_s": round(percentile(final, 95), 2),
        "inference_s_per_audio_s": round(busy / audio, 3),
        "passes": passes,
    }


def _stream(engine: InferenceEngine, item: CorpusItem, config: WindowingConfig, policy: MergePolicy) -> dict[str, Any]:
    """One file as one real-time stream on a simulated clock; steps take their real inference time."""
    audio = decode_audio_file(item.path)
    session = StreamSession("s", config, policy)
    state = {"free_at": 0.0, "shown": 0.0, "busy": 0.0, "passes": 0}
    emission: list[float] = []
    final: list[float] = []
    finals: dict[tuple[str, int], TranscriptSegment] = {}

    def step(now: float) -> None:
        windows = session.buffer.take_ready_windows()
        segments: list[TranscriptSegment] = []
        spent = 0.0
        for window in windows:
            if window.is_empty:
                segments += session.merge(window, None)
                continue
            begin = time.perf_counter()
            result = engine.transcribe_blocking(window.job("s", prompt=session.merger.prompt))
            spent += time.perf_counter() - begin
            state["passes"] += 1
            segments += session.merge(window, result)
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
        while 0 < state["free_at"] <= arrival and session.buffer.has_ready_windows():
            step(state["free_at"])
        session.buffer.apply(chunk)
        if state["free_at"] <= arrival and session.buffer.has_ready_windows():
            step(arrival)
    while not session.finished:
        if not session.buffer.has_ready_windows():
            session.buffer.close()
        step(max(state["free_at"], len(audio) / SAMPLE_RATE))
    text = " ".join(finals[k].text for k in sorted(finals) if finals[k].text)
    return {"text": text, "emission": emission, "final": final, "busy": state["busy"], "passes": state["passes"]}
