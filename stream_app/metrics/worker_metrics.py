"""Metrics of the live path: chunks in, windows through, segments out, and how long that took."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from stream_app.metrics.buckets import LATENCY_BUCKETS

CHUNKS = Counter("stream_app_chunks_total", "Audio chunks received, by outcome", ["outcome"])
CHUNK_BYTES = Counter("stream_app_chunk_bytes_total", "Bytes of audio payload received")
DEAD_LETTERS = Counter("stream_app_dead_letters_total", "Chunks sent to the dead-letter topic, by reason", ["reason"])
GAPS = Counter("stream_app_gaps_total", "Gaps in streams (lost sequence numbers or offset jumps)")
DROPPED_AUDIO = Counter(
    "stream_app_dropped_audio_seconds_total", "Audio dropped because a stream's buffer cap was reached"
)
WINDOWS = Counter("stream_app_windows_total", "Windows transcribed, by kind", ["kind"])
WINDOW_ERRORS = Counter("stream_app_window_errors_total", "Windows whose inference failed, by error", ["error"])
SEGMENTS = Counter("stream_app_segments_total", "Transcript segments published, by kind", ["kind"])
SEGMENT_LATENCY = Histogram(
    "stream_app_segment_latency_seconds",
    "From the production of a window's last chunk to the publication of its segment",
    ["kind"],
    buckets=LATENCY_BUCKETS,
)
WINDOW_PROCESSING = Histogram(
    "stream_app_window_processing_seconds", "Wall time from window ready to result merged", buckets=LATENCY_BUCKETS
)
LIVE_STREAMS = Gauge("stream_app_live_streams", "Streams with state held by this replica")
STREAMS_EVICTED = Counter("stream_app_streams_evicted_total", "Streams whose state was evicted, by cause", ["cause"])
LOOP_LAG = Histogram(
    "stream_app_event_loop_lag_seconds", "Extra delay of the worker's periodic timer", buckets=LATENCY_BUCKETS
)
