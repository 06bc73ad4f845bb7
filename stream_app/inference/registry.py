"""Loaded models keyed by (model, precision, device), least recently used first out, within a memory budget.

A model that has work in flight (``acquire`` holds it) is never evicted or unloaded under that
work: ``retire`` (used by live switching) marks it, and it goes when its last user lets go.
Loading blocks (seconds), so asyncio callers use ``await registry.aload(key)``, which runs it in
a thread. Memory is estimated from ``model.bin`` scaled by the precision (weights dominate), because
an RSS delta measured while other threads allocate is not attributable; the delta is recorded too.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import psutil

from stream_app.config import Settings, expand_path
from stream_app.config.languages import spoken_language
from stream_app.inference.context import ContextMode, EncoderContext
from stream_app.inference.guards import DecodeGuards
from stream_app.inference.models import resolve_model
from stream_app.inference.native_memory import release_free_memory
from stream_app.inference.precision import device_kind, normalize_precision, resolve_precision
from stream_app.inference.transcriber import WhisperTranscriber

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Bytes of loaded weights per byte of a float16 model.bin (how the bundled models are stored).
PRECISION_SCALE: dict[str, float] = {
    "float32": 2.0,
    "float16": 1.0,
    "bfloat16": 1.0,
    "int8": 0.5,
    "int8_float32": 0.5,
    "int8_float16": 0.5,
    "int8_bfloat16": 0.5,
}
RUNTIME_OVERHEAD_BYTES = 24 * 1024 * 1024  # tokenizer, feature extractor, CTranslate2 buffers


@dataclass(frozen=True, order=True)
class ModelKey:
    """What identifies one loaded model."""

    model: str
    precision: str
    device: str = "cpu"

    def __str__(self) -> str:
        return f"{self.model}@{self.precision}/{self.device}"


@dataclass(frozen=True)
class LoadedModel:
    """One row of ``snapshot()``: what is loaded, how big it is thought to be, and who uses it."""

    key: ModelKey
    estimated_bytes: int
    measured_rss_delta_bytes: int
    in_flight: int
    retiring: bool
    loaded_at: float
    last_used: float


def estimate_model_bytes(model_path: Path, precision: str) -> int:
    """Estimate a loaded model's memory from its ``model.bin`` size (stored as float16) and the precision."""
    size = (Path(model_path) / "model.bin").stat().st_size
    return int(size * PRECISION_SCALE[normalize_precision(precision)]) + RUNTIME_OVERHEAD_BYTES


@dataclass
class _Entry(Generic[T]):
    value: T
    estimated_bytes: int
    rss_delta: int
    loaded_at: float
    last_used: float
    refs: int = 0
    retiring: bool = False


class ModelRegistry(Generic[T]):
    """Caches loaded models; evicts idle ones, least recently used first, when over the memory budget."""

    def __init__(
        self,
        memory_budget_bytes: int,
        loader: Callable[[ModelKey], T],
        estimate_bytes: Callable[[ModelKey], int],
        *,
        close: Callable[[T], None] | None = None,
        give_back: Callable[[], object] | None = release_free_memory,
    ) -> None:
        """Create an empty registry.

        Args:
            memory_budget_bytes: Total estimated model memory to stay under (idle models are evicted).
            loader: Loads one model (blocking); e.g. builds a ``WhisperTranscriber``.
            estimate_bytes: Estimated memory of a key before it is loaded.
            close: Releases a model's native memory when it is evicted (optional).
            give_back: Returns freed memory to the system after a model is closed (default: glibc's
                ``malloc_trim``; None keeps it in the allocator, as before).
        """
        self.memory_budget_bytes = memory_budget_bytes
        self._loader = loader
        self._estimate = estimate_bytes
        self._close = close
        self._give_back = give_back
        self._lock = threading.Lock()
        self._entries: OrderedDict[ModelKey, _Entry[T]] = OrderedDict()
        self._loading: dict[ModelKey, Future[T]] = {}

    def load(self, key: ModelKey) -> T:
        """Return the loaded model for ``key``, loading it (once, even if many threads ask) if needed."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._touch(key, entry)
                return entry.value
            pending = self._loading.get(key)
            owner = pending is None
            if pending is None:
                pending = self._loading[key] = Future()
        if not owner:
            return pending.result()
        try:
            value = self._load_now(key)
        except BaseException as exc:
            with self._lock:
                del self._loading[key]
            pending.set_exception(exc)
            raise
        pending.set_result(value)
        return value

    async def aload(self, key: ModelKey) -> T:
        """``load`` in a worker thread, so the event loop keeps running while a model loads."""
        return await asyncio.get_running_loop().run_in_executor(None, self.load, key)

    @contextmanager
    def acquire(self, key: ModelKey) -> Iterator[T]:
        """Hold a model for one piece of work; it cannot be evicted or unloaded until the block ends."""
        while True:
            value = self.load(key)
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and entry.value is value:
                    entry.refs += 1
                    self._touch(key, entry)
                    break
        try:
            yield value
        finally:
            with self._lock:
                entry.refs -= 1
                drop = entry.refs == 0 and entry.retiring and self._entries.get(key) is entry
                if drop:
                    del self._entries[key]
            if drop:
                self._release(key, entry)

    def retire(self, key: ModelKey) -> bool:
        """Unload ``key`` now if idle, or as soon as its in-flight work ends; False if it is not loaded."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False
            entry.retiring = True
            drop = entry.refs == 0
            if drop:
                del self._entries[key]
        if drop:
            self._release(key, entry)
        return True

    def snapshot(self) -> list[LoadedModel]:
        """List what is loaded now, least recently used first (for `models list` and metrics)."""
        with self._lock:
            return [
                LoadedModel(k, e.estimated_bytes, e.rss_delta, e.refs, e.retiring, e.loaded_at, e.last_used)
                for k, e in self._entries.items()
            ]

    def estimate(self, key: ModelKey) -> int:
        """Return the memory ``key`` is estimated to take once loaded (read from its size on disk)."""
        return self._estimate(key)

    def estimated_bytes(self) -> int:
        """Sum of the loaded models' estimated memory."""
        with self._lock:
            return sum(e.estimated_bytes for e in self._entries.values())

    def _load_now(self, key: ModelKey) -> T:
        estimate = self._estimate(key)
        self._evict_for(estimate, keep=key)
        rss_before = psutil.Process().memory_info().rss
        value = self._loader(key)
        rss_delta = psutil.Process().memory_info().rss - rss_before
        now = time.monotonic()
        with self._lock:
            self._entries[key] = _Entry(value, estimate, rss_delta, now, now)
            del self._loading[key]
        logger.info("loaded %s (estimated %d MB, RSS grew %d MB)", key, estimate >> 20, rss_delta >> 20)
        self._evict_for(0, keep=key)
        return value

    def _evict_for(self, incoming: int, *, keep: ModelKey) -> None:
        """Drop idle models, least recently used first, until ``incoming`` more bytes fit the budget."""
        evicted: list[tuple[ModelKey, _Entry[T]]] = []
        with self._lock:
            total = sum(e.estimated_bytes for e in self._entries.values()) + incoming
            for k in list(self._entries):
                if total <= self.memory_budget_bytes:
                    break
                entry = self._entries[k]
                if k == keep or entry.refs > 0:
                    continue
                del self._entries[k]
                total -= entry.estimated_bytes
                evicted.append((k, entry))
            over = total > self.memory_budget_bytes
        for k, entry in evicted:
            logger.info("evicted %s to stay within the model memory budget", k)
            self._release(k, entry)
        if over:
            logger.warning(
                "models need an estimated %d MB, over the %d MB budget: the rest are in use",
                total >> 20,
                self.memory_budget_bytes >> 20,
            )

    def _release(self, key: ModelKey, entry: _Entry[T]) -> None:
        """Close a model that left the registry, give its memory back, and log what that freed."""
        rss_before = psutil.Process().memory_info().rss
        if self._close is not None:
            self._close(entry.value)
        if self._give_back is not None:
            self._give_back()
        rss_after = psutil.Process().memory_info().rss
        logger.info(
            "unloaded %s (estimated %d MB): RSS %d MB -> %d MB (%+d MB)",
            key,
            entry.estimated_bytes >> 20,
            rss_before >> 20,
            rss_after >> 20,
            round((rss_after - rss_before) / 2**20),
        )

    def _touch(self, key: ModelKey, entry: _Entry[T]) -> None:
        """Mark ``key`` most recently used (call with the lock held)."""
        entry.last_used = time.monotonic()
        self._entries.move_to_end(key)


def build_transcriber(
    settings: Settings, key: ModelKey, *, device_index: int | None = None, cpu_threads: int | None = None
) -> WhisperTranscriber:
    """Load the transcriber for ``key`` with the configured threads, language, VAD, guards and encoder context.

    ``device_index`` and ``cpu_threads`` override the configured GPU and the CPU threads (a replica
    passes its own); ``cpu_threads`` defaults to ``parallel.intra_threads``, where 0 means all cores.
    """
    opt, streaming = settings.optimization, settings.streaming
    return WhisperTranscriber(
        resolve_model(key.model, expand_path(opt.model_cache_dir)),
        model_name=key.model,
        precision=key.precision,
        device=key.device,
        device_index=opt.device_index if device_index is None else device_index,
        cpu_threads=settings.parallel.intra_threads if cpu_threads is None else cpu_threads,
        num_workers=settings.parallel.inter_threads,
        language=spoken_language(streaming.language),  # None: detect per window ("auto")
        beam_size=streaming.beam_size,
        vad=streaming.vad,
        guards=DecodeGuards(
            no_speech_threshold=streaming.no_speech_threshold,
            log_prob_threshold=streaming.log_prob_threshold,
            compression_ratio_threshold=streaming.compression_ratio_threshold,
        ),
        context=encoder_context(settings),
    )


def encoder_context(settings: Settings) -> EncoderContext:
    """Return the configured encoder context (``optimization.encoder_context``, margin and bucket)."""
    opt = settings.optimization
    mode: ContextMode = "fitted" if opt.encoder_context == "fitted" else "full"
    return EncoderContext(mode, opt.context_margin, opt.context_bucket)


def transcriber_registry(settings: Settings) -> ModelRegistry[WhisperTranscriber]:
    """Build a registry of single transcribers: local model names, checked precisions, the configured budget."""
    cache_dir = expand_path(settings.optimization.model_cache_dir)

    def load(key: ModelKey) -> WhisperTranscriber:
        return build_transcriber(settings, key)

    def estimate(key: ModelKey) -> int:
        return estimate_model_bytes(resolve_model(key.model, cache_dir), key.precision)

    return ModelRegistry(settings.optimization.memory_budget, load, estimate, close=WhisperTranscriber.close)


def model_key(settings: Settings, model: str | None = None, precision: str | None = None) -> ModelKey:
    """Build the key for a model and precision (default: the configured ones), resolved against the device.

    Logs the fallback note when the device does not support the requested precision.
    """
    device = device_kind(settings.optimization.device)
    chosen, note = resolve_precision(precision or settings.optimization.default_precision, device)
    if note:
        logger.warning("%s", note)
    return ModelKey(model or settings.optimization.model, chosen, device)
