"""The one configuration object: frozen sections loaded from TOML, overridden by the environment.

Every value is validated when the object is built, so a bad setting fails at start-up with a message
that names the key (``streaming.overlap_duration``) and the value, never later inside a worker.
Durations are seconds (``float``) and sizes bytes (``int``) once loaded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from stream_app.config.exceptions import ConfigError
from stream_app.config.units import parse_duration, parse_size


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
    security_protocol: str = _choice("PLAINTEXT", "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
    kafka_version: str = "4.1.1"


@dataclass(frozen=True)
class StreamingSettings:
    """How a stream's audio is cut into windows, and when its state is let go."""

    profile: str = _choice("live", "live", "throughput")
    chunk_duration: float = _duration("", minimum=1.0)
    overlap_duration: float = _duration("")
    interim_step: float = _duration("")
    max_latency: float = _duration("500ms")
    buffer_size: float = _duration("5min", minimum=1.0)
    idle_timeout: float = _duration("60s", minimum=1.0)
    max_chunk_bytes: int = _size("1MB", minimum=2)
    max_reorder_chunks: int = _int(64, minimum=0)
    pause_search: float = 0.4  # share of the window, at its end, searched for a pause to cut at (0 = fixed grid)
    min_pause: float = _duration("200ms", minimum=0.02)  # shortest silence a window may be cut in
    vad: bool = True
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    language: str = "en"
    beam_size: int = _int(1, minimum=1, maximum=16)


# Window length, overlap and interim step of each profile, in seconds; explicit settings override them.
PROFILES: dict[str, tuple[float, float, float]] = {
    "live": (10.0, 1.0, 0.0),
    "throughput": (30.0, 2.0, 0.0),
}


@dataclass(frozen=True)
class ParallelSettings:
    """The inference pool: how many model replicas, how they batch, and how long a window may take.

    ``max_workers`` is the number of model replicas, each a separately loaded model with its own
    CTranslate2 threads (on CUDA one per device index, round robin over the visible GPUs); the load
    balancer picks one per window. ``intra_threads`` 0 shares the CPU cores among the replicas.
    ``gpu_memory_per_worker`` is what the adaptive balancer scores each CUDA replica's memory against.
    """

    max_workers: int = _int(1, minimum=1, maximum=64)
    task_queue_size: int = _int(1000, minimum=1)
    load_balancing: str = _choice("adaptive", "round_robin", "least_loaded", "adaptive")
    gpu_memory_per_worker: int = _size("1GB")
    max_batch: int = _int(8, minimum=1, maximum=256)
    max_wait: float = _duration("5ms")
    task_timeout: float = _duration("60s", minimum=0.001)
    inter_threads: int = _int(1, minimum=1, maximum=64)
    intra_threads: int = _int(0, minimum=0, maximum=256)


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
    l3_redis_url: str = "redis://127.0.0.1:6379/0"
    ttl: float = _duration("24h", minimum=1.0)
    redis_timeout: float = _duration("50ms", minimum=0.001)
    max_value_size: int = _size("1MB", minimum=1)
    breaker_failures: int = _int(3, minimum=1)
    breaker_reset: float = _duration("5s")


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
    commit_interval: float = _duration("1s", minimum=0.01)
    session_timeout: float = _duration("10s", minimum=1.0)


@dataclass(frozen=True)
class LocalSettings:
    """The local stack (`stream-app local up`): a cache folder and the Redis port."""

    home: str = "~/.cache/stream-app/local"
    redis_port: int = _int(6379, minimum=1, maximum=65535)
    kafka_heap: str = "512m"


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

    @property
    def window_seconds(self) -> float:
        """Window length: the explicit setting, or the profile's."""
        if _is_set(self.streaming, "chunk_duration"):
            return self.streaming.chunk_duration
        return PROFILES[self.streaming.profile][0]

    @property
    def overlap_seconds(self) -> float:
        """Overlap between consecutive windows: the explicit setting, or the profile's."""
        if _is_set(self.streaming, "overlap_duration"):
            return self.streaming.overlap_duration
        return PROFILES[self.streaming.profile][1]

    @property
    def interim_step_seconds(self) -> float:
        """Step between interim passes (0 = no interim passes): the explicit setting, or the profile's."""
        if _is_set(self.streaming, "interim_step"):
            return self.streaming.interim_step
        return PROFILES[self.streaming.profile][2]

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Return the effective configuration as plain data, for `config show`."""
        out: dict[str, dict[str, Any]] = {}
        for section in dataclasses.fields(self):
            values = dataclasses.asdict(getattr(self, section.name))
            out[section.name] = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
        out["streaming"]["effective_window_seconds"] = self.window_seconds
        out["streaming"]["effective_overlap_seconds"] = self.overlap_seconds
        out["streaming"]["effective_interim_step_seconds"] = self.interim_step_seconds
        return out


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
}

PRECISIONS = ("float32", "float16", "bfloat16", "int8", "int8_float16", "int8_float32", "int8_bfloat16")
PrecisionName = Literal[
    "float32", "float16", "bfloat16", "int8", "int8_float16", "int8_float32", "int8_bfloat16"
]


def build_section(name: str, raw: dict[str, Any]) -> Any:
    """Validate one section's raw values and build its frozen dataclass."""
    cls = _SECTION_CLASSES[name]
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(
            f"{name}.{unknown[0]}", raw[unknown[0]], f"unknown key; known keys: {', '.join(known)}"
        )
    values: dict[str, Any] = {}
    for key, f in known.items():
        full = f"{name}.{key}"
        given = key in raw
        value = raw[key] if given else f.default
        values[key] = _coerce(full, f, value, given)
    return cls(**values)


def _coerce(full: str, f: dataclasses.Field[Any], value: Any, given: bool) -> Any:
    meta = f.metadata
    unit = meta.get("unit")
    if unit == "duration":
        if value == "" and not given:
            return _UNSET
        seconds = parse_duration(value, full)
        if seconds < meta.get("min", 0.0):
            raise ConfigError(full, value, f"must be at least {meta['min']} s")
        return seconds
    if unit == "precision":
        return normalize_precision(full, value)
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
            return float(value)
        except ValueError:
            raise ConfigError(full, value, "expected a number") from None
    if ftype.startswith("tuple"):
        items = (
            value
            if isinstance(value, list | tuple)
            else [v.strip() for v in str(value).split(",") if v.strip()]
        )
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


PRECISION_ALIASES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def normalize_precision(key: str, value: object) -> str:
    """Return the CTranslate2 compute type for a precision name; INT4 is refused, never substituted."""
    name = str(value).strip().lower()
    if name in {"int4", "fp4", "nf4", "q4", "int4_float16"}:
        raise ConfigError(
            key, value, "CTranslate2 has no 4-bit path for Whisper; int8 is the smallest it runs"
        )
    name = PRECISION_ALIASES.get(name, name)
    if name not in PRECISIONS:
        raise ConfigError(key, value, f"choose one of {', '.join(PRECISIONS)} (or fp32, fp16, bf16)")
    return name


def expand_path(path: str) -> Path:
    """Expand ``~`` in a configured path."""
    return Path(path).expanduser()
