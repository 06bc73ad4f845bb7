"""`stream-app bench latency`: how long a listener waits for each word, 1 to 16 live streams at once.

Each row publishes ``N`` streams of distinct generated speech in real time (a recorder thread each,
100 ms chunks) to one real worker (the configured live profile, cache off so that every window is
inferred), then reads both topics back and computes, for every word of every stream's final
transcript (`stream_app.bench.word_lag`):

* the **emission lag**: its audio reached the broker (first chunk's broker timestamp + the word's
  end) until a segment showing it was on the transcripts topic;
* the **final lag**: the same, until the final segment holding it was.

Also per row: the worker's CPU seconds per second of audio (``core_s_per_audio_s``, all of its
threads, from /proc), the streamed WER of the row (the final segments as published in real time)
against faster-whisper on the same files whole (``whole_file_wer``, the service's decoding options:
`reference_options`; ``wer_delta`` = streamed - whole), and the service's own ``latency_ms`` p95 (from
the newest chunk it had applied to the segment's publication). The reference is faster-whisper called
directly (``WhisperModel.transcribe``: the model, precision and decoding the worker uses) on the same
files whole, one at a time in this process: its CPU per audio second is ``whole_file_core_s_per_audio_s``
and ``core_s_ratio`` = the service's / the reference's (what streaming costs over transcribing a file).
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import psutil

from stream_app.audio.files import read_native_audio
from stream_app.bench.common import Clip, load_reference_model, make_clips, reference_options, without_cache
from stream_app.bench.report import emit, percentile
from stream_app.bench.word_lag import PublishedSegment, word_lags
from stream_app.clients.chunking import PlannedChunk, plan_chunks, prepare_audio
from stream_app.config import Settings
from stream_app.local import LocalStack
from stream_app.testing.service import ServiceHarness
from stream_app.testing.topic_reader import read_topic
from stream_app.testing.wer import corpus_wer
from stream_app.wire.chunk import ChunkFormat
from stream_app.wire.segment_codec import decode_segment

GOALS = (
    "emission_lag_p95_s_1 <= 0.8, final_lag_p95_s_1 <= 2.5, emission_lag_p95_s_8 <= 1.5, "
    "final_lag_p95_s_8 <= 4.0, max_streams_final_lag_p95_le_4s >= 16, wer_delta <= 0.02 at every row"
)
FINAL_LAG_LIMIT_S = 4.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the latency benchmark."""
    parser.add_argument("--streams", default="1,2,4,8,16", help="comma-separated concurrent stream counts")
    parser.add_argument("--seconds", type=float, default=60.0, help="audio per stream, published in real time")
    parser.add_argument("--chunk-ms", type=float, default=100.0, help="chunk length the recorders send (default 100)")
    parser.add_argument("--partitions", type=int, default=8, help="partitions of the service's topics")


def plan_clip(clip: Clip, chunk_ms: float) -> tuple[list[PlannedChunk], ChunkFormat]:
    """Cut a clip into the chunks a recorder sends (16 kHz mono s16le)."""
    frames, fmt = prepare_audio(read_native_audio(clip.path), "s16le16k")
    return list(plan_chunks(frames, fmt, chunk_ms)), fmt


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Publish each row's streams in real time, read the topics back, compute the lags; then the bare reference."""
    counts = sorted({int(c) for c in str(args.streams).split(",") if c.strip()})
    if not counts or counts[0] < 1:
        raise SystemExit("--streams: give positive stream counts, e.g. 1,2,4,8,16")
    settings = without_cache(settings)
    started = time.monotonic()
    clips = make_clips(max(counts), args.seconds, seed=23)
    plans = [plan_clip(clip, args.chunk_ms) for clip in clips]
    LocalStack(settings).up()
    rows: list[dict[str, Any]] = []
    with ServiceHarness(settings, partitions=args.partitions) as harness:
        harness.start("r1")
        _publish(harness, {"warmup": plans[0]}, realtime=False)  # model warm, partitions assigned
        harness.collect(["warmup"], timeout=300)
        process = _worker_process(harness)
        for count in counts:
            ids = {f"live{count}-{i}": plans[i] for i in range(count)}
            cpu_before = _cpu_seconds(process)
            _publish(harness, ids, realtime=True)
            harness.collect(list(ids), timeout=300 + args.seconds)
            cpu = _cpu_seconds(process) - cpu_before
            rows.append(_row(harness, count, ids, clips, cpu))
    whole, whole_cost = _whole_files(settings, clips[: max(counts)])
    for row in rows:
        count = row["streams"]
        row["whole_file_wer"] = round(corpus_wer([c.reference for c in clips[:count]], whole[:count]), 4)
        row["wer_delta"] = round(row["streamed_wer"] - row["whole_file_wer"], 4)
        row["whole_file_core_s_per_audio_s"] = round(whole_cost, 4)
        row["core_s_ratio"] = round(row["core_s_per_audio_s"] / whole_cost, 2) if whole_cost > 0 else None
    within = [r["streams"] for r in rows if r["final_lag_p95_s"] <= FINAL_LAG_LIMIT_S]
    summary: dict[str, Any] = {
        **{f"{key}_{r['streams']}": r[key] for r in rows for key in ("emission_lag_p95_s", "final_lag_p95_s")},
        "max_streams_final_lag_p95_le_4s": max(within, default=0),
        "max_wer_delta": max(r["wer_delta"] for r in rows),
        "p95_ms": rows[0]["p95_ms"],
        "model": settings.optimization.model,
        "precision": settings.optimization.default_precision,
        "encoder_context": settings.optimization.encoder_context,
        "commit_step_s": settings.commit_step_seconds,
        "preview_step_s": settings.preview_step_seconds,
        "seconds_per_stream": args.seconds,
        "chunk_ms": args.chunk_ms,
        "cache": "disabled",
        "reference": "WhisperModel.transcribe on each whole file, one at a time in the benchmark's process "
        "(reference_options: same model, precision, language, beam, thresholds, Silero VAD)",
        "wall_s": round(time.monotonic() - started, 1),
        "goals": GOALS,
        "rows": rows,
    }
    emit("latency: word lags as a listener feels them, per concurrency", rows, summary, as_json=args.json)
    return 0


def _row(
    harness: ServiceHarness, count: int, ids: Mapping[str, Any], clips: Sequence[Clip], cpu_seconds: float
) -> dict[str, Any]:
    """Read this row's streams back from both topics and compute their word lags."""
    kafka = harness.settings.kafka
    origins: dict[str, int] = {}
    for record in read_topic(kafka, kafka.input_topic):
        stream = (record.key or b"").decode()
        headers = dict(record.headers)
        if stream in ids and headers.get("ce_seq") == b"0":
            origins[stream] = record.timestamp_ms - int(headers.get("ce_streamoffset", b"0")) * 1000 // 16_000
    published: dict[str, list[PublishedSegment]] = {sid: [] for sid in ids}
    for record in read_topic(kafka, kafka.output_topic):
        stream = (record.key or b"").decode()
        if stream in published and record.value:
            published[stream].append(PublishedSegment(decode_segment(record.value), record.timestamp_ms))
    emission: list[float] = []
    final: list[float] = []
    service_ms: list[float] = []
    texts: list[str] = []
    for stream, items in published.items():
        lags = word_lags(items, origins[stream])
        emission += lags.emission
        final += lags.final
        finals = {p.segment.segment_id: p.segment for p in items if p.segment.is_final}
        service_ms += [s.latency_ms for s in finals.values() if s.latency_ms is not None and s.words]
        texts.append(" ".join(s.text for s in sorted(finals.values(), key=lambda s: (s.start, s.index)) if s.text))
    audio = sum(clip.duration for clip in clips[:count])
    return {
        "streams": count,
        "words": len(final),
        "emission_lag_p50_s": _r(percentile(emission, 50)),
        "emission_lag_p95_s": _r(percentile(emission, 95)),
        "emission_lag_p99_s": _r(percentile(emission, 99)),
        "final_lag_p50_s": _r(percentile(final, 50)),
        "final_lag_p95_s": _r(percentile(final, 95)),
        "final_lag_p99_s": _r(percentile(final, 99)),
        "core_s_per_audio_s": round(cpu_seconds / audio, 3) if audio else None,
        "streamed_wer": round(corpus_wer([c.reference for c in clips[:count]], texts), 4),
        "p95_ms": round(percentile(service_ms, 95), 1),
    }


def _r(value: float) -> float:
    return round(value, 2)


def _worker_process(harness: ServiceHarness) -> psutil.Process:
    replica = harness.replicas["r1"]
    assert replica.process is not None
    return psutil.Process(replica.process.pid)


def _cpu_seconds(process: psutil.Process) -> float:
    """CPU seconds of the worker and its children so far (every thread: CTranslate2's included)."""
    total = 0.0
    for proc in [process, *process.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def _publish(
    harness: ServiceHarness, streams: Mapping[str, tuple[list[PlannedChunk], ChunkFormat]], *, realtime: bool
) -> None:
    """Publish each stream from its own thread (a recorder each) and wait until all are sent."""
    errors: list[BaseException] = []

    def send(stream_id: str, chunks: list[PlannedChunk], fmt: ChunkFormat) -> None:
        try:
            with harness.publisher() as publisher:
                publisher.publish_chunks(stream_id, chunks, fmt, realtime=realtime)
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(sid, *plan), daemon=True) for sid, plan in streams.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"publishing failed: {errors[0]}") from errors[0]


def _whole_files(settings: Settings, clips: Sequence[Clip]) -> tuple[list[str], float]:
    """faster-whisper on each whole file, one after another: the texts, and its CPU seconds per audio second."""
    model = load_reference_model(settings)
    options = reference_options(settings)
    process = psutil.Process()
    segments, _ = model.transcribe(str(clips[0].path), **options)  # warm-up, not counted
    list(segments)
    cpu_before = sum(process.cpu_times()[:2])
    texts = []
    for clip in clips:
        segments, _ = model.transcribe(str(clip.path), **options)
        texts.append(" ".join(s.text.strip() for s in segments))
    cpu = sum(process.cpu_times()[:2]) - cpu_before
    audio = sum(clip.duration for clip in clips)
    return texts, cpu / audio if audio else 0.0
