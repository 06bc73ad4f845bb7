"""`stream-app bench capacity`: how many live streams one machine keeps up with, and what they cost.

N simulated recorders send real-time speech (100 ms chunks, each stream at its own phase of a set of
speech clips) into the worker's own streaming code (`StreamSession`: buffer, Silero VAD once per
sample, the live rule's planner, the merger) and its own inference engine (`InferenceEngine`: the pool,
its replicas and batching across streams, cache off). Each stream runs one step at a time, as in the
worker: hear the new audio, plan, decode at most one request, merge; previews only while the pool has
room. No Kafka and no state store: the broker is not the bottleneck (`bench latency` measures the whole
service), and this runs where Kafka cannot, such as a GPU machine.

For every word: the **emission lag** (its audio reached the recorder's send, i.e. stream time of its end
on the stream's real-time clock, until a segment showing it came out) and the **final lag** (until its
final segment came out). N doubles from ``--start`` until the final lag's p95 passes ``--break-at``.
Per N: lag percentiles, model calls and mean batch, CPU core-seconds per audio second (the whole
process), and on CUDA the GPU's utilisation and memory (``nvidia-smi``, sampled). The reference
faster-whisper call is timed on the same clips (``WhisperModel.transcribe``, whole clip, this process)
for the cost ratio of streaming over transcribing files.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psutil

from stream_app.bench.report import emit, percentile
from stream_app.config import Settings
from stream_app.inference.engine import InferenceEngine
from stream_app.inference.pool import PreviewExpired
from stream_app.inference.pool_metrics import default_metrics
from stream_app.inference.types import DecodeKind
from stream_app.inference.vad import SpeechDetector
from stream_app.streaming import StreamSession
from stream_app.streaming.word_lags import observe_word_lags
from stream_app.wire.chunk import SAMPLE_RATE, AudioChunk
from stream_app.wire.segment import TranscriptSegment
from stream_app.worker.profile import live_config_for, merge_policy_for

GOALS = (
    "max_streams_final_p95_le_4s >= 16 and core_s_per_audio_s_at_8 <= 0.1 (2 cores); "
    "max_streams_emission_p95_le_1s >= 1000 (one H200)"
)
CLIPS = Path("~/.cache/stream-app/bench/capacity-clips").expanduser()

Samples = npt.NDArray[np.float32]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the capacity benchmark."""
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: optimization.device")
    parser.add_argument("--model", default=None, help="tiny.en | base | a model folder (default: optimization.model)")
    parser.add_argument("--precision", default=None, help="default: int8 on cpu, float16 on cuda")
    parser.add_argument("--start", type=int, default=1, help="first stream count (it doubles)")
    parser.add_argument("--max", type=int, default=64, help="largest stream count tried")
    parser.add_argument("--streams", default="", help="comma-separated stream counts instead of doubling")
    parser.add_argument("--seconds", type=float, default=40.0, help="seconds each row runs (real time)")
    parser.add_argument("--chunk-ms", type=float, default=100.0, help="chunk length the recorders send")
    parser.add_argument("--break-at", type=float, default=8.0, help="stop doubling once the final lag p95 passes this")
    parser.add_argument(
        "--clips", type=Path, default=None, help="a folder of speech files (default: made with espeak-ng)"
    )
    parser.add_argument("--max-batch", type=int, default=0, help="parallel.max_batch for this run (0: the setting)")
    parser.add_argument("--replicas", type=int, default=0, help="parallel.max_workers for this run (0: the setting)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run each stream count for ``--seconds`` of real time and print lags, cost and the limits found."""
    started = time.monotonic()
    settings = _for_run(settings, args)
    clips = _clips(args.clips)
    engine = InferenceEngine(settings, use_cache=False)
    key = engine.start()
    detector = SpeechDetector()
    reference_cost = _reference_cost(settings, clips[:2])
    counts = [int(c) for c in args.streams.split(",") if c.strip()] or _doubling(args.start, args.max)
    rows: list[dict[str, Any]] = []
    try:
        for count in counts:
            row = asyncio.run(_row(engine, detector, settings, clips, count, args))
            rows.append(row)
            if not args.streams and row["final_lag_p95_s"] > args.break_at:
                break
    finally:
        engine.close()
    for row in rows:
        row["core_s_ratio_vs_whole_file"] = (
            round(row["core_s_per_audio_s"] / reference_cost, 2) if reference_cost > 0 else None
        )
    summary: dict[str, Any] = {
        "max_streams_emission_p95_le_1s": max(
            (r["streams"] for r in rows if r["emission_lag_p95_s"] <= 1.0), default=0
        ),
        "max_streams_final_p95_le_4s": max((r["streams"] for r in rows if r["final_lag_p95_s"] <= 4.0), default=0),
        "core_s_per_audio_s_at_8": next((r["core_s_per_audio_s"] for r in rows if r["streams"] == 8), None),
        "whole_file_core_s_per_audio_s": round(reference_cost, 4),
        "model": key.model,
        "precision": key.precision,
        "device": key.device,
        "replicas": settings.parallel.max_workers,
        "max_batch": settings.parallel.max_batch,
        "commit_step_s": settings.commit_step_seconds,
        "preview_step_s": settings.preview_step_seconds,
        "seconds_per_row": args.seconds,
        "chunk_ms": args.chunk_ms,
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "reference": "WhisperModel.transcribe on whole clips in this process (reference_options), for the ratio",
        "wall_s": round(time.monotonic() - started, 1),
        "goals": GOALS,
        "rows": rows,
    }
    emit(
        "capacity: live streams on this machine, the worker's streaming and inference code",
        rows,
        summary,
        as_json=args.json,
    )
    return 0


def _for_run(settings: Settings, args: argparse.Namespace) -> Settings:
    opt, par = settings.optimization, settings.parallel
    device = args.device or opt.device
    precision = args.precision or ("float16" if device == "cuda" else opt.default_precision)
    opt = dataclasses.replace(opt, device=device, default_precision=precision, model=args.model or opt.model)
    if args.max_batch:
        par = dataclasses.replace(par, max_batch=args.max_batch)
    if args.replicas:
        par = dataclasses.replace(par, max_workers=args.replicas)
    caching = dataclasses.replace(settings.caching, cache_levels=())
    return dataclasses.replace(settings, optimization=opt, parallel=par, caching=caching)


def _doubling(start: int, limit: int) -> list[int]:
    counts, n = [], max(1, start)
    while n <= limit:
        counts.append(n)
        n *= 2
    return counts


def _clips(folder: Path | None) -> list[Samples]:
    """Speech to stream: the given folder's files, or a few minutes made once with espeak-ng."""
    from stream_app.audio.files import decode_audio_file

    if folder is None:
        from stream_app.bench.common import make_clips

        return [decode_audio_file(clip.path) for clip in make_clips(8, 45.0, seed=41, folder=CLIPS)]
    files = sorted(p for p in folder.iterdir() if p.suffix in (".wav", ".flac"))
    if not files:
        raise SystemExit(f"--clips {folder}: no .wav or .flac files")
    return [decode_audio_file(p) for p in files]


@dataclass
class _Stream:
    """One simulated stream: its session, its audio, what it published and when."""

    index: int
    session: StreamSession
    audio: Samples
    t0: float = 0.0
    shown_until: float = 0.0
    emission: list[float] = field(default_factory=list)
    final: list[float] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    done: bool = False
    served_at: float = 0.0  # when its last commit decode returned (the pool's order, as the worker's)


async def _row(
    engine: InferenceEngine,
    detector: SpeechDetector,
    settings: Settings,
    clips: Sequence[Samples],
    count: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    config, policy = live_config_for(settings), merge_policy_for(settings)
    total = round(args.seconds * SAMPLE_RATE)
    streams = []
    for i in range(count):
        clip = clips[i % len(clips)]
        offset = (i * 7919 * 160) % clip.shape[0]  # each stream at its own phase of its clip
        looped = np.concatenate([clip[offset:], clip[:offset]] * (1 + total // clip.shape[0]))[:total]
        streams.append(_Stream(i, StreamSession(f"cap{count}-{i}", config, policy), looped.astype(np.float32)))
    metrics = default_metrics()
    calls_before, jobs_before = _histogram(metrics.batch_size)
    gpu = _GpuSampler() if engine.active.device == "cuda" else None
    process = psutil.Process()
    cpu_before = sum(process.cpu_times()[:2])
    begin = time.monotonic()
    tasks = [asyncio.create_task(_send(s, args.chunk_ms, begin + (i % 10) * 0.01)) for i, s in enumerate(streams)]
    skip = settings.streaming.skip_missed_ticks
    tasks += [asyncio.create_task(_work(s, engine, detector, skip_missed=skip)) for s in streams]
    await asyncio.gather(*tasks)
    wall = time.monotonic() - begin
    cpu = sum(process.cpu_times()[:2]) - cpu_before
    calls_after, jobs_after = _histogram(metrics.batch_size)
    utilisation, memory = gpu.stop() if gpu is not None else (None, None)
    emission = [x for s in streams for x in s.emission]
    final = [x for s in streams for x in s.final]
    audio = count * args.seconds
    calls = calls_after - calls_before
    return {
        "streams": count,
        "words": len(final),
        "emission_lag_p50_s": round(percentile(emission, 50), 2),
        "emission_lag_p95_s": round(percentile(emission, 95), 2),
        "final_lag_p50_s": round(percentile(final, 50), 2),
        "final_lag_p95_s": round(percentile(final, 95), 2),
        "model_calls": int(calls),
        "mean_batch": round((jobs_after - jobs_before) / calls, 2) if calls else 0.0,
        "core_s_per_audio_s": round(cpu / audio, 4),
        "wall_over_audio": round(wall / args.seconds, 2),
        "gpu_util_pct": utilisation,
        "gpu_memory_mib": memory,
    }


async def _send(stream: _Stream, chunk_ms: float, start: float) -> None:
    """Send the stream's audio as a recorder does: chunks at real-time pace, the last one ending the stream."""
    size = round(chunk_ms / 1000 * SAMPLE_RATE)
    stream.t0 = start
    positions = range(0, stream.audio.shape[0], size)
    for seq, offset in enumerate(positions):
        due = start + (offset + size) / SAMPLE_RATE
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        last = seq == len(positions) - 1
        stream.session.feed(
            AudioChunk(stream.session.stream_id, seq, offset, stream.audio[offset : offset + size], end_of_stream=last)
        )
        stream.arrived.set()


async def _work(stream: _Stream, engine: InferenceEngine, detector: SpeechDetector, *, skip_missed: bool) -> None:
    """Run the stream's steps one at a time, as the worker runs them."""
    session = stream.session
    while not session.finished:
        if not session.has_work(previews=engine.has_room_for_previews()):
            stream.arrived.clear()
            await stream.arrived.wait()
            continue
        _, samples = session.speech_needed()
        if samples.shape[0]:
            probs, state = await asyncio.to_thread(detector, samples, session.track.model_state)
            session.add_speech(probs, state)
        plan = session.plan(previews=engine.has_room_for_previews(), skip_missed=skip_missed)
        segments = list(plan.segments)
        if plan.request is not None:
            request = plan.request
            try:
                result = await engine.transcribe(request.job(session.stream_id, time.monotonic(), stream.served_at))
            except PreviewExpired:  # as the worker: the stream goes on to its next commit decode
                session.preview_dropped(request)
                result = None
            finally:
                if request.kind is not DecodeKind.PREVIEW:
                    stream.served_at = time.monotonic()
            if result is not None:
                segments += session.complete(request, result)
        _observe(stream, segments, time.monotonic())


def _observe(stream: _Stream, segments: Sequence[TranscriptSegment], at: float) -> None:
    lags = observe_word_lags(segments, stream.t0, at, stream.shown_until)  # the worker's rule, as its metrics
    stream.shown_until = lags.shown_until
    stream.emission.extend(lags.emission)
    stream.final.extend(lags.final)


def _histogram(histogram: Any) -> tuple[float, float]:
    """Count and sum of a labelled histogram over all its children (calls and jobs of the pool)."""
    count = total = 0.0
    for metric in histogram.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count"):
                count += sample.value
            elif sample.name.endswith("_sum"):
                total += sample.value
    return count, total


def _reference_cost(settings: Settings, clips: Sequence[Samples]) -> float:
    """CPU seconds per audio second of faster-whisper on whole clips, this process (0 when it cannot run)."""
    from stream_app.bench.common import load_reference_model, reference_options

    model = load_reference_model(settings)
    options = reference_options(settings)
    process = psutil.Process()
    list(model.transcribe(clips[0][: SAMPLE_RATE * 5], **options)[0])  # warm-up
    before = sum(process.cpu_times()[:2])
    for clip in clips:
        list(model.transcribe(clip, **options)[0])
    spent = sum(process.cpu_times()[:2]) - before
    return float(spent) / (sum(int(c.shape[0]) for c in clips) / SAMPLE_RATE)


class _GpuSampler:
    """Samples ``nvidia-smi`` every half second in a thread: mean utilisation and peak memory."""

    def __init__(self) -> None:
        self._values: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        if shutil.which("nvidia-smi"):
            self._thread.start()

    def _loop(self) -> None:
        query = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"]
        while not self._stop.wait(0.5):
            try:
                out = subprocess.run(query, capture_output=True, text=True, timeout=5).stdout.splitlines()[0]
                util, memory = (float(x) for x in out.split(","))
                self._values.append((util, memory))
            except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
                continue

    def stop(self) -> tuple[float | None, float | None]:
        """Stop sampling; return the mean utilisation (%) and the peak memory (MiB), None when unseen."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        if not self._values:
            return None, None
        return round(sum(u for u, _ in self._values) / len(self._values), 1), max(m for _, m in self._values)


def main() -> None:
    """Run the benchmark without the rest of the CLI (a GPU machine without Kafka's client libraries)."""
    from stream_app.config.loader import load_settings

    parser = argparse.ArgumentParser(prog="python -m stream_app.bench.capacity", description=__doc__)
    add_arguments(parser)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    raise SystemExit(run(args, load_settings()))


if __name__ == "__main__":
    main()
