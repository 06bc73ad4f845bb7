"""`stream-app bench latency`: how long a listener waits for each word, 1 to 16 live streams at once.

Each row publishes ``N`` streams of distinct generated speech in real time (a recorder thread each,
100 ms chunks) to one real worker (the configured live profile, cache off so that every window is
inferred), then reads both topics back and computes, for every word of every stream's final
transcript (`stream_app.bench.word_lag`):

* the **emission lag**: its audio reached the broker (first chunk's broker timestamp + the word's
  end) until a segment showing it was on the transcripts topic;
* the **final lag**: the same, until the final segment holding it was.

Also per row: the worker's CPU seconds per second of audio (``core_s_per_audio_s``, all of its
threads, from /proc), the streamed WER of the row (the final segments as published in real time,
previews' commits included) against faster-whisper on the same files whole (``whole_file_wer``, the
service's decoding options: `reference_options`; ``wer_delta`` = streamed - whole), and the
service's own ``latency_ms`` p95 (from the chunk that made a window ready to its segment: kept for
continuity with earlier runs). The reference
is faster-whisper called directly (``WhisperModel.transcribe``, the model, precision and decoding the
worker uses, its full 30 s context) on the same final windows, one at a time: ``bare_p95_ms`` and
``bare_core_s_per_audio_s``; ``overhead_ratio`` = service ``latency_ms`` p95 / bare p95.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import psutil

from stream_app.audio.files import read_native_audio
from stream_app.bench.common import Clip, make_clips, whole_file_texts, without_cache
from stream_app.bench.report import emit, percentile
from stream_app.bench.word_lag import PublishedSegment, word_lags
from stream_app.clients.chunking import PlannedChunk, plan_chunks, prepare_audio
from stream_app.config import Settings
from stream_app.inference.registry import model_key, transcriber_registry
from stream_app.local import LocalStack
from stream_app.streaming import StreamSession, Window, WindowingConfig
from stream_app.testing.service import ServiceHarness
from stream_app.testing.topic_reader import read_topic
from stream_app.testing.wer import corpus_wer
from stream_app.wire.chunk import ChunkFormat
from stream_app.wire.chunk_codec import decode_chunk, encode_chunk
from stream_app.wire.segment_codec import decode_segment
from stream_app.worker.profile import merge_policy_for, windowing_for

GOALS = (
    "emission_lag_p95_s_1 <= 1.0, final_lag_p95_s_1 <= 2.5, emission_lag_p95_s_8 <= 2.0, "
    "final_lag_p95_s_8 <= 4.0, max_streams_final_lag_p95_le_4s >= 16"
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
    bare_ms, bare_cost = _bare(settings, plans[: max(counts)], clips[: max(counts)])
    whole = whole_file_texts(settings, [clip.path for clip in clips])
    for row in rows:
        count = row["streams"]
        row["whole_file_wer"] = round(corpus_wer([c.reference for c in clips[:count]], whole[:count]), 4)
        row["wer_delta"] = round(row["streamed_wer"] - row["whole_file_wer"], 4)
        row["bare_p95_ms"] = round(percentile(bare_ms, 95), 1)
        row["bare_core_s_per_audio_s"] = round(bare_cost, 3)
        row["overhead_ratio"] = round(row["p95_ms"] / row["bare_p95_ms"], 3) if row["bare_p95_ms"] > 0 else None
    within = [r["streams"] for r in rows if r["final_lag_p95_s"] <= FINAL_LAG_LIMIT_S]
    summary: dict[str, Any] = {
        **{f"{key}_{r['streams']}": r[key] for r in rows for key in ("emission_lag_p95_s", "final_lag_p95_s")},
        "max_streams_final_lag_p95_le_4s": max(within, default=0),
        "p95_ms": rows[0]["p95_ms"],
        "overhead_ratio": rows[0]["overhead_ratio"],
        "model": settings.optimization.model,
        "precision": settings.optimization.default_precision,
        "encoder_context": settings.optimization.encoder_context,
        "window_s": settings.window_seconds,
        "interim_step_s": settings.interim_step_seconds,
        "seconds_per_stream": args.seconds,
        "chunk_ms": args.chunk_ms,
        "cache": "disabled",
        "reference": "WhisperModel.transcribe on each final window, full 30 s context, one at a time; "
        "whole_file_wer: WhisperModel.transcribe on each whole file (reference_options)",
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


def rebuild_windows(
    stream_id: str, chunks: Sequence[PlannedChunk], fmt: ChunkFormat, config: WindowingConfig, settings: Settings
) -> list[Window]:
    """Return the final windows the worker cuts from these chunks, each chunk encoded and decoded as on the wire."""
    session = StreamSession(stream_id, config, merge_policy_for(settings))
    windows: list[Window] = []
    for planned in chunks:
        key, value, headers = encode_chunk(
            stream_id, planned.seq, planned.offset, planned.pcm, fmt, planned.end_of_stream, "bench"
        )
        chunk = decode_chunk(key, value, headers, max_bytes=len(value) + 1)
        windows.extend(w for w in session.feed(chunk).windows if not w.is_interim)
    if chunks and not chunks[-1].end_of_stream:
        windows.extend(session.close().windows)
    return [w for w in windows if not w.is_empty and not w.is_interim]


def _bare(
    settings: Settings, plans: Sequence[tuple[list[PlannedChunk], ChunkFormat]], clips: Sequence[Clip]
) -> tuple[list[float], float]:
    """Time faster-whisper's own path (``transcribe_window``) on every final window, one call at a time."""
    config = windowing_for(settings)
    transcriber = transcriber_registry(settings).load(model_key(settings))
    times: list[float] = []
    process = psutil.Process()
    cpu_before = sum(process.cpu_times()[:2])
    try:
        for index, (chunks, fmt) in enumerate(plans):
            stream_id = f"bare-{index}"
            windows = rebuild_windows(stream_id, chunks, fmt, config, settings)
            if index == 0 and windows:
                transcriber.transcribe_window(windows[0].job(stream_id))  # warm-up, not counted
                cpu_before = sum(process.cpu_times()[:2])
            for window in windows:
                begin = time.perf_counter()
                result = transcriber.transcribe_window(window.job(stream_id))
                if result.words:
                    times.append((time.perf_counter() - begin) * 1000.0)
    finally:
        transcriber.close()
    cpu = sum(process.cpu_times()[:2]) - cpu_before
    audio = sum(clip.duration for clip in clips)
    return times, cpu / audio if audio else 0.0
