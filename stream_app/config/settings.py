"""The one configuration object: frozen sections loaded from TOML, overridden by the environment.

Every value is validated when the object is built, so a bad setting fails at start-up with a message
that names the key (``streaming.max_window``) and the value, never later inside a worker.
Durations are seconds (``float``) and sizes bytes (``int``) once loaded.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from stream_app.config.exceptions import ConfigError
from stream_app.config.languages import check_language
from stream_app.config.secrets import MASK, Secret, redact_url, url_password
from stream_app.config.units import parse_duration, parse_size

_log = logging.getLogger(__name__)


def _duration(default: str, *, minimum: float = 0.0) -> Any:
    return field(default=default, metadata={"unit": "duration", "min": minimum})


def _size(default: str, *, minimum: int = 0) -> Any:
    return field(default=default, metadata={"unit": "size", "min": minimum})


def _choice(default: str, *choices: str) -> Any:
    return field(default=default, metadata={"choices": choices})


def _precision(default: str) -> Any:
    return field(default=default, metadata={"unit": "precision"})


def _int(default: int, *, minimum: int = 0, maximum: int | None = None) -> Any:
    return field(default=default, metadata={"min": minimum, "max": maximum})


# A password-like value: shown as ``***``, also read from ``<key>_file``, taken verbatim from the environment.
NO_SECRET = Secret()
SECRET = {"secret": True}


def _url(default: str) -> Any:
    """Mark a URL that may carry credentials: its password is masked wherever the configuration is shown."""
    return field(default=default, metadata={"url": True})


def _paths() -> Any:
    """Mark a list of absolute folders (``~`` allowed)."""
    return field(default=(), metadata={"unit": "paths"})


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSettings:
    """Where the broker is and which topics carry what."""

    bootstrap_servers: str = "127.0.0.1:9092"
    controller_port: int = _int(9093, minimum=1, maximum=65535)
    input_topic: str = "audio.chunks"
    output_topic: str = "transcripts"
    dlq_topic: str = "audio.chunks.dlq"
    control_topic: str = "stream-app.control"
    group_id: str = "stream-app"
    partitions: int = _int(4, minimum=1, maximum=1024)
    replication_factor: int = _int(1, minimum=1, maximum=16)
    security_protocol: str = _choice("PLAINTEXT", *SECURITY_PROTOCOLS)
    sasl_mechanism: str = _choice("PLAIN", *SASL_MECHANISMS)
    username: str = ""  # SASL user (SASL_PLAINTEXT, SASL_SSL)
    password: Secret = field(default=NO_SECRET, metadata=SECRET)
    password_file: str = ""  # a file holding the password (instead of `password`)
    ssl_ca_file: str = ""  # PEM CA bundle that signed the broker's certificate; empty: the system's
    ssl_cert_file: str = ""  # client certificate (PEM) for mutual TLS
    ssl_key_file: str = ""  # its private key (PEM)
    ssl_key_password: Secret = field(default=NO_SECRET, metadata=SECRET)
    ssl_key_password_file: str = ""
    ssl_check_hostname: bool = True  # the broker's certificate must name the host we connect to
    kafka_version: str = "4.1.1"


@dataclass(frozen=True)
class StreamingSettings:
    """How a stream's audio becomes decodes and final words, and when its state is let go.

    The live rule (`stream_app.streaming.planner`): a window opens ``speech_lead`` before speech the
    VAD hears, every word before a pause of ``utterance_pause`` becomes final, the window is cut at such
    a pause once it spans ``min_window`` (or after ``long_pause``) and never grows past ``max_window``.
    Inside it a commit decode runs every ``commit_step`` (one step more for every
    ``commit_step_growth`` the window spans, when set): what two of them agree on, ending
    ``commit_lookahead`` before the decode's end, is final (a word they hear differently is final as
    the newer one heard it once ``settle_after`` words after it agree); previews every ``preview_step`` show the
    rest while the model has time. ``profile`` sets the two steps unless they are given. Each decode
    re-reads at most ``decode_context`` of audio whose words are already final (0: the whole window),
    decoded freely (its words up to the last final one dropped) unless ``force_final_words``; a
    preview re-reads at most ``preview_context`` of them (previews make no final word).
    A stream whose audio is a commit step or more ahead of its decodes (the model is behind, or the
    stream just moved to this replica) decodes at the newest step only (``skip_missed_ticks``).
    The defaults are the most accurate rule measured with `stream-app bench profiles`
    (docs/benchmarks/streaming.md): whole windows decoded freely, commits 2 s behind a decode's end.
    """

    profile: str = _choice("live", "live", "throughput")
    commit_step: float = _duration("")  # deterministic commit decodes (0: commit at pauses only)
    preview_step: float = _duration("")  # best-effort previews (0: none)
    commit_lookahead: float = _duration("2s")
    commit_step_growth: float = _duration("0s")  # the commit step grows by one step per this much window (0: fixed)
    settle_after: int = _int(2, minimum=0, maximum=16)  # a word two commit decodes hear differently settles...
    # ...as the newer one heard it once this many words after it agree (0: it waits for two that agree)
    decode_context: float = _duration("0s")  # final audio a decode re-reads before its new audio (0: all)
    preview_context: float = _duration("2s")  # ...and a preview (0: as much as a commit decode)
    force_final_words: bool = False  # true: force the decoder through the final words it re-reads
    skip_missed_ticks: bool = True  # a stream behind its audio decodes at the newest commit step, not at each missed
    speech_threshold: float = 0.5  # Silero VAD probability at or above which a frame is speech...
    silence_threshold: float = 0.35  # ...and below which, once in speech, it is silence again
    speech_lead: float = _duration("400ms")  # audio kept before the first speech of a window
    speech_tail: float = _duration("300ms")  # silence kept after the last speech before a pause
    utterance_pause: float = _duration("2s", minimum=0.032)  # a pause: the words before it become final
    long_pause: float = _duration("2s", minimum=0.032)  # a window never spans a silence this long
    min_window: float = _duration("12s", minimum=0.5)  # a window is cut at the first pause after this much speech
    max_window: float = _duration("20s", minimum=1.0)  # ...and never grows past this (at most 28 s)
    min_speech: float = _duration("100ms")  # less speech than this in a window is not decoded (clicks)
    buffer_size: float = _duration("5min", minimum=1.0)
    idle_timeout: float = _duration("60s", minimum=1.0)
    eos_grace: float = _duration("5s", minimum=0.1)  # an end of stream held behind a hole waits this long
    max_chunk_bytes: int = _size("1MB", minimum=2)
    max_reorder_chunks: int = _int(64, minimum=0)
    max_held: float = _duration("60s", minimum=1.0)  # out-of-order audio held per stream before a hole is declared lost
    ended_retention: float = _duration("5min", minimum=1.0)  # an ended stream's marker is kept this long
    max_window_attempts: int = _int(3, minimum=1, maximum=20)  # tries per decode (failures and crashes)
    vad: bool = True
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    language: str = field(default="en", metadata={"unit": "language"})  # a Whisper code; "auto" (or "") detects
    beam_size: int = _int(1, minimum=1, maximum=16)


# Commit step and preview step of each profile, in seconds; explicit settings override them.
PROFILES: dict[str, tuple[float, float]] = {
    "live": (1.0, 0.25),  # chosen with `stream-app bench latency` (docs/benchmarks/streaming.md)
    "throughput": (0.0, 0.0),  # finals at pauses only, no previews: the least model time per audio second
}

# Keys earlier releases read that the live rule no longer has: accepted with a warning, so a rolling
# upgrade with an old configuration file still starts.
RETIRED_STREAMING_KEYS = (
    "chunk_duration",
    "overlap_duration",
    "interim_step",
    "pause_search",
    "min_pause",
    "preview_min",
    "interim_commits",
    "commit_min_probability",
    "left_context",
    "prompt_chars",
)


@dataclass(frozen=True)
class ParallelSettings:
    """The inference pool: how many model replicas, how they batch, and how long a window may take.

    ``max_workers`` is the number of model replicas, each a separately loaded model with its own
    CTranslate2 threads (on CUDA one per device index, round robin over the visible GPUs); the load
    balancer picks one per window. ``intra_threads`` 0 shares the CPU cores among the replicas:
    ``cpu_cores`` of them (a container's CPU limit), or those the process may run on when 0.
    ``gpu_memory_per_worker`` is what the adaptive balancer scores each CUDA replica's memory against.
    Previews wait behind every commit decode; one still waiting after ``preview_max_wait`` is dropped
    the next time a worker takes a job (up to one model call later), so its stream goes on to its next
    commit decode instead of waiting behind other streams' decodes.
    """

    max_workers: int = _int(2, minimum=1, maximum=64)
    task_queue_size: int = _int(1000, minimum=1)
    load_balancing: str = _choice("adaptive", "round_robin", "least_loaded", "adaptive")
    gpu_memory_per_worker: int = _size("1GB")
    max_batch: int = _int(8, minimum=1, maximum=256)
    max_wait: float = _duration("5ms")
    preview_max_wait: float = _duration("1s")  # a preview not started by then is dropped (0: previews wait)
    task_timeout: float = _duration("60s", minimum=0.001)
    inter_threads: int = _int(1, minimum=1, maximum=64)
    intra_threads: int = _int(0, minimum=0, maximum=256)
    cpu_cores: int = _int(0, minimum=0, maximum=1024)  # cores intra_threads 0 divides (0: the process's affinity)


@dataclass(frozen=True)
class OptimizationSettings:
    """Which model runs where, at which precision, within which memory budget, with which encoder context.

    ``encoder_context = "fitted"`` gives the encoder each window's frames plus ``context_margin``
    (rounded up to ``context_bucket``) instead of 30 s; a decode that trips a guard is re-run in full.
    """

    model: str = "tiny.en"
    device: str = _choice("cpu", "cpu", "cuda", "auto")
    device_index: int = _int(0, minimum=0)
    default_precision: str = _precision("int8")
    adaptive_quantization: bool = False
    precision_ceiling: str = _precision("float32")
    adaptive_logprob_threshold: float = -0.8
    memory_budget: int = _size("512MB")
    model_cache_dir: str = "~/.cache/stream-app/models"
    model_roots: tuple[str, ...] = _paths()  # folders a live switch may load models from (besides the registry)
    encoder_context: str = _choice("fitted", "fitted", "full")  # fitted: encoder input sized to the window
    context_margin: float = _duration("1500ms")  # fitted: padding after the window's audio
    context_bucket: float = _duration("1s", minimum=0.01)  # fitted: input lengths rounded up to a multiple


@dataclass(frozen=True)
class CachingSettings:
    """The transcription cache tiers (L1 memory, L2 disk, L3 Redis shared by replicas)."""

    cache_levels: tuple[str, ...] = ("memory", "disk", "redis")
    l1_size: int = _size("64MB")
    l2_size: int = _size("1GB")
    l2_path: str = "~/.cache/stream-app/transcripts"
    l3_redis_url: str = _url("redis://127.0.0.1:6379/0")  # rediss:// for TLS
    ttl: float = _duration("24h", minimum=1.0)
    redis_timeout: float = _duration("50ms", minimum=0.001)
    max_value_size: int = _size("1MB", minimum=1)
    breaker_failures: int = _int(3, minimum=1)
    breaker_reset: float = _duration("5s")
    redis_username: str = ""  # ACL user; empty: the URL's, or Redis's default user
    redis_password: Secret = field(default=NO_SECRET, metadata=SECRET)
    redis_password_file: str = ""
    redis_ssl_ca_file: str = ""  # rediss:// only
    redis_ssl_cert_file: str = ""
    redis_ssl_key_file: str = ""
    redis_ssl_key_password: Secret = field(default=NO_SECRET, metadata=SECRET)
    redis_ssl_key_password_file: str = ""
    redis_ssl_check_hostname: bool = True


@dataclass(frozen=True)
class MetricsSettings:
    """The Prometheus endpoint and the worker's health endpoints."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = _int(9108, minimum=0, maximum=65535)


@dataclass(frozen=True)
class WorkerSettings:
    """The faust worker process: where its RocksDB state lives and its web port."""

    data_dir: str = "./var/worker"
    web_port: int = _int(6066, minimum=0, maximum=65535)
    web_host: str = "127.0.0.1"
    web_enabled: bool = False  # faust's own web server (its table and statistics pages stay off)
    commit_interval: float = _duration("1s", minimum=0.01)
    # Failover (docs/operations.md, `stream-app bench failover`): a killed replica's partitions move after
    # about session_timeout + heartbeat_interval; shorter means faster failover and more false ones.
    # raised at start to the brokers' group.min.session.timeout.ms where that is higher
    session_timeout: float = _duration("6s", minimum=1.0)
    heartbeat_interval: float = _duration("500ms", minimum=0.05)  # also how late the others hear of a rebalance
    rebalance_timeout: float = _duration("10s", minimum=1.0)  # how long a rebalance waits for every member
    standby_replicas: int = _int(1, minimum=0, maximum=8)  # warm copies of each partition's tables elsewhere
    static_membership: bool = True  # the replica name is the group instance id: a quick restart moves nothing
    drain_timeout: float = _duration("1s")  # on SIGTERM, steps in flight get this long before being handed over
    fetch_max_wait: float = _duration("100ms", minimum=0.0)  # the consumer's long poll (faust hard-codes 1.5 s)
    max_inflight_records: int = _int(5000, minimum=1)  # per partition: records read but not yet acknowledged
    state_flush_interval: float = _duration("250ms", minimum=0.01)  # group commit of streams' state
    retry_backoff_max: float = _duration("5s", minimum=0.01)  # longest wait between retries of the broker
    ack_stall_timeout: float = _duration("5min", minimum=1.0)  # a record unacknowledged longer: /healthz red
    inject_window_failures: str = ""  # testing hook: "<stream>:<window>:<times>,..." fails those windows
    inject_window_crashes: str = ""  # testing hook: "<stream>:<window>,..." kills the process as the model starts them


@dataclass(frozen=True)
class LocalSettings:
    """The local stack (`stream-app local up`): a cache folder and the Redis port."""

    home: str = "~/.cache/stream-app/local"
    redis_port: int = _int(6379, minimum=1, maximum=65535)
    kafka_heap: str = "512m"


@dataclass(frozen=True)
class PublisherSettings:
    """The recorder (`stream-app publish`, `ChunkPublisher`): how it rides out a broker outage.

    Unacknowledged chunks wait in a bounded local buffer; when it is full the publish call blocks
    (backpressure, nothing is dropped); a chunk is reported undelivered only once
    ``delivery_timeout`` passed without an acknowledgement. A producer that acknowledges nothing for
    ``stall_timeout`` while the broker has answered a fresh connection for as long is replaced, and
    its chunks are sent again.
    """

    delivery_timeout: float = _duration("5min", minimum=1.0)
    buffer_size: int = _size("64MB", minimum=1024)
    buffer_chunks: int = _int(100_000, minimum=1, maximum=10_000_000)
    stall_timeout: float = _duration("15s", minimum=1.0)


CACHE_LEVELS = ("memory", "disk", "redis")


@dataclass(frozen=True)
class Settings:
    """All of stream-app's configuration, validated."""

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    streaming: StreamingSettings = field(default_factory=StreamingSettings)
    parallel: ParallelSettings = field(default_factory=ParallelSettings)
    optimization: OptimizationSettings = field(default_factory=OptimizationSettings)
    caching: CachingSettings = field(default_factory=CachingSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    local: LocalSettings = field(default_factory=LocalSettings)
    publisher: PublisherSettings = field(default_factory=PublisherSettings)

    @property
    def commit_step_seconds(self) -> float:
        """Step between commit decodes (0 = finals at pauses only): the explicit setting, or the profile's."""
        if _is_set(self.streaming, "commit_step"):
            return self.streaming.commit_step
        return PROFILES[self.streaming.profile][0]

    @property
    def preview_step_seconds(self) -> float:
        """Step between previews (0 = none): the explicit setting, or the profile's."""
        if _is_set(self.streaming, "preview_step"):
            return self.streaming.preview_step
        return PROFILES[self.streaming.profile][1]

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Return the effective configuration as plain data, for `config show`: every secret as ``***``."""
        out: dict[str, dict[str, Any]] = {}
        for section in dataclasses.fields(self):
            values = getattr(self, section.name)
            out[section.name] = {f.name: _shown(f, getattr(values, f.name)) for f in dataclasses.fields(values)}
        for name in ("commit_step", "preview_step"):  # not set: the profile decides
            if not _is_set(self.streaming, name):
                out["streaming"][name] = f"(from profile {self.streaming.profile!r})"
        out["streaming"]["effective_commit_step_seconds"] = self.commit_step_seconds
        out["streaming"]["effective_preview_step_seconds"] = self.preview_step_seconds
        return out

    def secret_values(self) -> list[str]:
        """Return every secret's text (passwords, key passwords, URL passwords), for masking logs."""
        found: list[str] = []
        for section in dataclasses.fields(self):
            values = getattr(self, section.name)
            for f in dataclasses.fields(values):
                value = getattr(values, f.name)
                if isinstance(value, Secret) and value:
                    found.append(value.reveal())
                elif f.metadata.get("url"):
                    found.append(url_password(value))
        return [s for s in found if s]


def _shown(f: dataclasses.Field[Any], value: Any) -> Any:
    """Return the value as `config show` prints it: secrets masked, tuples as lists."""
    if isinstance(value, Secret):
        return str(value)
    if f.metadata.get("url"):
        return redact_url(value)
    return list(value) if isinstance(value, tuple) else value


_UNSET = -1.0  # marks a profile-derived duration the user did not set


def _is_set(section: StreamingSettings, name: str) -> bool:
    return bool(getattr(section, name) != _UNSET)


_SECTION_CLASSES: dict[str, type[Any]] = {
    "kafka": KafkaSettings,
    "streaming": StreamingSettings,
    "parallel": ParallelSettings,
    "optimization": OptimizationSettings,
    "caching": CachingSettings,
    "metrics": MetricsSettings,
    "worker": WorkerSettings,
    "local": LocalSettings,
    "publisher": PublisherSettings,
}

PRECISIONS = ("float32", "float16", "bfloat16", "int8", "int8_float16", "int8_float32", "int8_bfloat16")
PrecisionName = Literal["float32", "float16", "bfloat16", "int8", "int8_float16", "int8_float32", "int8_bfloat16"]


def build_section(name: str, raw: dict[str, Any]) -> Any:
    """Validate one section's raw values and build its frozen dataclass."""
    cls = _SECTION_CLASSES[name]
    known = {f.name: f for f in dataclasses.fields(cls)}
    if name == "streaming":
        retired = sorted(set(raw) & set(RETIRED_STREAMING_KEYS))
        if retired:
            _log.warning(
                "ignoring streaming.%s: the live rule no longer uses %s (see stream-app.example.toml)",
                retired[0],
                "these keys: " + ", ".join(retired) if len(retired) > 1 else "it",
            )
            raw = {k: v for k, v in raw.items() if k not in RETIRED_STREAMING_KEYS}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        # the value is not shown: a misspelt key may hold a password
        raise ConfigError(f"{name}.{unknown[0]}", MASK, f"unknown key; known keys: {', '.join(known)}")
    values: dict[str, Any] = {}
    for key, f in known.items():
        full = f"{name}.{key}"
        given = key in raw
        value = raw[key] if given else f.default
        values[key] = _coerce(full, f, value, given)
    for key, f in known.items():
        if f.metadata.get("secret") and values.get(f"{key}_file"):
            values[key] = _secret_from_file(f"{name}.{key}", values[key], values[f"{key}_file"])
    return cls(**values)


def _secret_from_file(full: str, given: Secret, path: str) -> Secret:
    """Read a secret from the file ``<key>_file`` names; a trailing line break is not part of it."""
    if given:
        raise ConfigError(f"{full}_file", path, f"{full} is set too: give the secret once")
    try:
        text = expand_path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{full}_file", path, f"cannot read the file: {exc.strerror or exc}") from None
    secret = text.removesuffix("\n").removesuffix("\r")
    if not secret:
        raise ConfigError(f"{full}_file", path, "the file is empty")
    return Secret(secret)


def _coerce(full: str, f: dataclasses.Field[Any], value: Any, given: bool) -> Any:
    meta = f.metadata
    unit = meta.get("unit")
    if meta.get("secret"):
        if isinstance(value, Secret):
            return value
        if not isinstance(value, str):
            raise ConfigError(full, MASK, "expected a string")  # never echo a secret, even a malformed one
        return Secret(value)
    if meta.get("url") and not isinstance(value, str):
        raise ConfigError(full, MASK, "expected a URL string")
    if unit == "paths":
        return _folders(full, value)
    if unit == "duration":
        if value == "" and not given:
            return _UNSET
        seconds = parse_duration(value, full)
        if seconds < meta.get("min", 0.0):
            raise ConfigError(full, value, f"must be at least {meta['min']} s")
        return seconds
    if unit == "precision":
        return normalize_precision(full, value)
    if unit == "language":
        if not isinstance(value, str):
            raise ConfigError(full, value, 'expected a language code such as "en", or "auto"')
        return check_language(full, value)
    if unit == "size":
        size = parse_size(value, full)
        if size < meta.get("min", 0):
            raise ConfigError(full, value, f"must be at least {meta['min']} bytes")
        return size
    ftype = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    if ftype == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
            return value.lower() in {"true", "1", "yes"}
        raise ConfigError(full, value, "expected true or false")
    if ftype == "int":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ConfigError(full, value, "expected a whole number")
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(full, value, "expected a whole number") from None
        if number < meta.get("min", 0) or (meta.get("max") is not None and number > meta["max"]):
            raise ConfigError(full, value, f"must be between {meta.get('min', 0)} and {meta.get('max')}")
        return number
    if ftype == "float":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(full, value, "expected a number")
        try:
            number_f = float(value)
        except ValueError:
            raise ConfigError(full, value, "expected a number") from None
        if not math.isfinite(number_f):
            raise ConfigError(full, value, "expected a finite number")
        return number_f
    if ftype.startswith("tuple"):
        items = value if isinstance(value, list | tuple) else [v.strip() for v in str(value).split(",") if v.strip()]
        bad = [v for v in items if v not in CACHE_LEVELS]
        if bad:
            raise ConfigError(full, value, f"unknown level {bad[0]!r}; choose from {', '.join(CACHE_LEVELS)}")
        return tuple(items)
    if not isinstance(value, str):
        raise ConfigError(full, value, "expected a string")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(full, value, f"choose one of {', '.join(choices)}")
    return value


def _folders(full: str, value: Any) -> tuple[str, ...]:
    """Validate a list of absolute folders (``~/...`` allowed); relative paths and ``..`` are refused."""
    items = value if isinstance(value, list | tuple) else [v.strip() for v in str(value).split(",") if v.strip()]
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(full, value, "expected a list of folder paths")
        path = Path(item).expanduser()
        if not path.is_absolute():
            raise ConfigError(full, item, "must be an absolute path")
        if ".." in path.parts:
            raise ConfigError(full, item, "must not contain '..'")
    return tuple(items)


PRECISION_ALIASES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def normalize_precision(key: str, value: object) -> str:
    """Return the CTranslate2 compute type for a precision name; INT4 is refused, never substituted."""
    name = str(value).strip().lower()
    if name in {"int4", "fp4", "nf4", "q4", "int4_float16"}:
        raise ConfigError(key, value, "CTranslate2 has no 4-bit path for Whisper; int8 is the smallest it runs")
    name = PRECISION_ALIASES.get(name, name)
    if name not in PRECISIONS:
        raise ConfigError(key, value, f"choose one of {', '.join(PRECISIONS)} (or fp32, fp16, bf16)")
    return name


def expand_path(path: str) -> Path:
    """Expand ``~`` in a configured path."""
    return Path(path).expanduser()
