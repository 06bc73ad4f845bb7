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
DEAD_LETTERS_REFUSED = Counter(
    "stream_app_dead_letters_refused_total",
    "Records acknowledged without a dead letter: the dead-letter topic refused even their bare dlq_* headers",
)
WRONG_KEYS = Counter(
    "stream_app_wrong_stream_key_chunks_total",
    "Chunks refused because they did not carry their stream's key (dead-lettered as wrong_stream_key)",
)
OVERLAPPING_AUDIO = Counter(
    "stream_app_overlapping_audio_seconds_total",
    "Audio dropped because its chunk's offset put it on stream time already received (the first audio is kept)",
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
WINDOW_FAILURES = Counter(
    "stream_app_window_failures_total",
    "Windows given up after their attempts (marked as gaps in the transcript and dead-lettered), by reason",
    ["reason"],
)
PROCESSING_ERRORS = Counter(
    "stream_app_processing_errors_total",
    "Failures the worker retried instead of dead-lettering: broker, state (corrupt stored state), bug",
    ["kind"],
)
BROKER_AVAILABLE = Gauge(
    "stream_app_broker_available", "1 while the worker's writes to the broker are acknowledged in time, else 0"
)
LATE_CHUNKS = Counter(
    "stream_app_late_chunks_total", "Chunks that arrived after their stream ended (dead-lettered as after_end)"
)
LOCAL_STATE_DROPS = Counter(
    "stream_app_local_state_drops_total",
    "Local table files dropped and restored from the changelog: last in step longer ago than its tombstones last",
)
FENCED_WRITES = Counter(
    "stream_app_fenced_writes_total",
    "State writes of an owner that lost its partition: refused when written, or ignored when restored",
    ["where"],
)
TAKE_OVER_RETRIES = Counter(
    "stream_app_take_over_retries_total",
    "Take-overs repeated under a higher owner epoch: another replica fenced the partition after this one restored it",
)
STATE_RESETS = Counter(
    "stream_app_state_resets_total", "Streams whose stored state was missing, stale or damaged and was started anew"
)
WORD_EMISSION_LAG = Histogram(
    "stream_app_word_emission_lag_seconds",
    "From the moment a word's audio reached the broker to the word's first appearance on the transcripts topic",
    buckets=LATENCY_BUCKETS,
)
WORD_FINAL_LAG = Histogram(
    "stream_app_word_final_lag_seconds",
    "From the moment a word's audio reached the broker to the word's appearance in a final segment",
    buckets=LATENCY_BUCKETS,
)
ENDED_MARKERS = Gauge("stream_app_ended_markers", "Ended streams whose marker this replica still keeps")
INFLIGHT_RECORDS = Gauge("stream_app_inflight_records", "Input records read but not yet acknowledged", ["partition"])
PARTITION_OWNED = Gauge(
    "stream_app_partition_owned", "1 for each input partition this replica owns (absent otherwise)", ["partition"]
)
REBALANCES = Counter(
    "stream_app_rebalances_total", "Assignments received from the consumer group (each one paused every partition)"
)
PARTITIONS_MOVED = Counter(
    "stream_app_partitions_moved_total",
    "Input partitions that changed owner at a rebalance: taken over (in) or given up (out)",
    ["direction"],
)
CHANGELOG_RECORDS_RESTORED = Counter(
    "stream_app_changelog_records_restored_total",
    "Changelog records applied to the local tables: keeping a standby copy warm, restoring an active partition, "
    "or catching up with what its last owner wrote before the take-over's fence",
    ["role"],
)
HANDOVERS = Counter(
    "stream_app_handovers_total",
    "Graceful stops, by how their steps in flight ended: finished, or abandoned to the next owner",
    ["outcome"],
)
INPUT_REREADS = Counter(
    "stream_app_input_rereads_total",
    "Input partitions read again from an offset the reader lacked: a record came early (early), or the "
    "log went on past what an idle reader had (idle_tail)",
    ["reason"],
)
INPUT_OFFSETS_SKIPPED = Counter(
    "stream_app_input_offsets_skipped_total",
    "Input offsets given up as absent from the log (a transactional producer's markers, retention)",
)
PREVIEWS_EXPIRED = Counter(
    "stream_app_previews_expired_total",
    "Previews dropped unrun: they waited behind commit decodes longer than parallel.preview_max_wait",
)
UNANCHORED_DECODES = Counter(
    "stream_app_unanchored_decodes_total",
    "Free decodes in which no word repeated the last final word: new words were told from final ones by time",
)
