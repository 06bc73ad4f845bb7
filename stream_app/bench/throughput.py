"""`stream-app bench throughput`: the same files through four paths, as real-time factors side by side.

(a) faster-whisper's `WhisperModel.transcribe`, file after file (the reference); (b) faster-whisper's
`BatchedInferencePipeline`; (c) the service (real worker process, Kafka, ``throughput`` profile) with
1, 4 and 8 concurrent streams, each file one stream published as fast as possible, and (c') the
same with the configured ``live`` profile (previews included) and 8 streams; (d) `transcribe_batch`
(what `stream-app batch` runs). Same model and precision everywhere; (a) and (b) decode with the
service's options (`reference_options`: VAD, temperatures, no previous-text prompt, thresholds, word
timestamps); what still differs is printed as ``differences``. Model loading and worker start-up
are outside every timing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any

from stream_app.bench.common import (
    Clip,
    load_reference_model,
    make_clips,
    reference_options,
    run_streams,
    window_env,
    with_profile,
    without_cache,
)
from stream_app.bench.report import emit
from stream_app.clients.kafka_probe import check_kafka_access
from stream_app.config import Settings
from stream_app.testing.service import KAFKA_CHECK_S, ServiceHarness
from stream_app.testing.wer import corpus_wer

PATHS = ("sequential", "batched", "service", "batch")
STREAM_COUNTS = (1, 4, 8)
LIVE_STREAMS = 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the throughput benchmark."""
    parser.add_argument("--files", type=int, default=8, help="number of generated speech files (default 8)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each file in seconds (default 60)")
    parser.add_argument(
        "--only", default=",".join(PATHS), help=f"comma-separated subset of {','.join(PATHS)} (default: all)"
    )
    parser.add_argument("--batch-size", type=int, default=8, help="BatchedInferencePipeline batch size")
    parser.add_argument("--partitions", type=int, default=8, help="partitions of the service's topics")
    parser.add_argument("--chunk-ms", type=float, default=500.0, help="chunk length the service streams use")
    parser.add_argument(
        "--window", type=float, default=None, help="window length of the workers in seconds (default: the profile's)"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the chosen paths on the same files and print the table and the ratios."""
    only = {p.strip() for p in str(args.only).split(",") if p.strip()}
    unknown = only - set(PATHS)
    if unknown:
        raise SystemExit(f"--only: unknown path(s) {', '.join(sorted(unknown))}; choose from {', '.join(PATHS)}")
    if "service" in only:  # said now, not after minutes of reference decoding
        check_kafka_access(settings.kafka, timeout=KAFKA_CHECK_S)
    clips = make_clips(args.files, args.seconds)
    audio = sum(c.duration for c in clips)
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {
        "model": settings.optimization.model,
        "precision": settings.optimization.default_precision,
        "device": settings.optimization.device,
        "files": len(clips),
        "audio_seconds": round(audio, 2),
    }

    def record(key: str, label: str, wall: float, wer: float, note: str = "") -> None:
        rtx = audio / wall if wall > 0 else 0.0
        summary[key] = round(rtx, 3)
        rows.append({"path": label, "audio_s": audio, "wall_s": wall, "rtx": rtx, "wer": wer, "note": note})

    options = reference_options(settings)
    if "sequential" in only or "batched" in only:
        model = load_reference_model(settings)
        if "sequential" in only:
            wall, texts = _timed(clips, lambda c: model.transcribe(str(c.path), **options)[0])
            record("sequential_rtx", "(a) WhisperModel.transcribe, file after file", wall, _wer(clips, texts))
        if "batched" in only:
            from faster_whisper import BatchedInferencePipeline

            pipeline = BatchedInferencePipeline(model)
            batched_options = {k: v for k, v in options.items() if k != "condition_on_previous_text"}
            wall, texts = _timed(
                clips, lambda c: pipeline.transcribe(str(c.path), batch_size=args.batch_size, **batched_options)[0]
            )
            record(
                "batched_rtx", f"(b) BatchedInferencePipeline (batch_size={args.batch_size})", wall, _wer(clips, texts)
            )
        del model
    if "service" in only:
        runs = [("throughput", count) for count in STREAM_COUNTS] + [("live", LIVE_STREAMS)]
        for profile in ("throughput", "live"):
            service = without_cache(with_profile(settings, profile))
            with ServiceHarness(service, env=window_env(args.window), partitions=args.partitions) as harness:
                harness.start("r1")
                run_streams(harness, clips[:1], 1, label="warmup", chunk_ms=args.chunk_ms)
                for count in [c for p, c in runs if p == profile]:
                    result = run_streams(harness, clips, count, label=f"{profile}{count}", chunk_ms=args.chunk_ms)
                    note = f"{result.completed}/{len(clips)} streams ended"
                    key = f"service_rtx_{count}_streams" if profile == "throughput" else "live_service_rtx_8_streams"
                    label = f"(c) service, {profile} profile, {count} concurrent streams"
                    record(key, label, result.wall_seconds, result.wer, note)
    if "batch" in only:
        from stream_app.batch import transcribe_batch
        from stream_app.batch.model import load_transcriber

        transcriber = load_transcriber(settings)
        started = time.monotonic()
        batch = transcribe_batch([c.path for c in clips], settings=settings, transcriber=transcriber)
        wall = time.monotonic() - started
        by_path = {r.path: r.text for r in batch.results}
        wer = _wer(clips, [by_path.get(str(c.path), "") for c in clips])
        note = f"{batch.succeeded}/{len(clips)} files, {batch.windows} windows"
        record("batch_cli_rtx", "(d) transcribe_batch (stream-app batch)", wall, wer, note)
        transcriber.close()

    sequential = summary.get("sequential_rtx")
    if sequential:
        for key, source in (
            ("ratio_batched_vs_sequential", "batched_rtx"),
            ("ratio_service_vs_sequential", "service_rtx_8_streams"),
            ("ratio_live_service_vs_sequential", "live_service_rtx_8_streams"),
            ("ratio_batch_vs_sequential", "batch_cli_rtx"),
        ):
            if source in summary:
                summary[key] = round(summary[source] / sequential, 3)
    summary["reference_options"] = ", ".join(f"{k}={v}" for k, v in options.items())
    summary["differences"] = (
        "(a)/(b) decode 30 s chunks of VAD-packed speech with the full 30 s encoder context; the service "
        f"decodes windows cut at pauses with encoder_context={settings.optimization.encoder_context}, and the "
        "live profile adds previews (interim passes); (b) has no condition_on_previous_text option"
    )
    summary["goals"] = (
        "ratio_service_vs_sequential >= 1.0 (8 streams); ratio_live_service_vs_sequential >= 1.0; "
        "ratio_batch_vs_sequential >= 1.2"
    )
    emit(
        "throughput: audio seconds per wall second (rtx), same files, same model and precision",
        rows,
        summary,
        as_json=args.json,
    )
    return 0


def _timed(clips: Sequence[Clip], transcribe: Callable[[Clip], Any]) -> tuple[float, list[str]]:
    """Run ``transcribe`` on every clip in turn (consuming faster-whisper's lazy segments); wall time and texts."""
    texts = []
    started = time.monotonic()
    for clip in clips:
        texts.append(" ".join(segment.text.strip() for segment in transcribe(clip)))
    return time.monotonic() - started, texts


def _wer(clips: Sequence[Clip], texts: Sequence[str]) -> float:
    return corpus_wer([c.reference for c in clips], list(texts))
