"""The inference engine: the active model's pool, the cache in front of it, adaptive precision, live switching.

This is what the worker, batch jobs and benchmarks call. One engine per process:
- ``transcribe`` looks the window up in the cache (in a thread, off the event loop) and sends a miss
  to the pool of the *active* model, whose replicas (``parallel.max_workers``) the balancer
  chooses among; the fresh result is stored (in a thread too).
- With adaptive precision on, a result that the `EscalationRule` finds too unsure is re-run at the
  next precision up to the ceiling; the result records the precision that made it and where it
  started (``escalated_from``). At most one re-run per window, so the extra cost is bounded.
- ``switch`` loads the new model beside the old one, makes it active for new windows, lets windows
  already queued finish on the old pool, then closes that pool and retires the old model. A model
  estimated larger than ``optimization.memory_budget`` on its own is refused before it loads
  (`check_budget`). A window of the old model that adaptive precision would re-run is not re-run
  once the switch has happened: the old model's higher rung would be loaded again, and stay.
- ``stalled`` / ``oldest_call_seconds`` tell a health check that a model call hangs past
  ``parallel.task_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge

from stream_app.cache import TranscriptCache, build_cache
from stream_app.config import Settings
from stream_app.inference.exceptions import ModelOverBudget
from stream_app.inference.pool import InferencePool, PoolClosed
from stream_app.inference.precision import EscalationRule, next_precision
from stream_app.inference.registry import ModelKey, ModelRegistry, model_key
from stream_app.inference.replicas import ModelReplicas, replicas_registry
from stream_app.inference.types import WindowJob, WindowTranscript
from stream_app.inference.window_cache import WindowCache

log = logging.getLogger(__name__)

SWITCH_RETRIES = 3  # a window that raced a live switch is resubmitted to the newly active model

ESCALATIONS = Counter(
    "stream_app_precision_escalations_total", "Windows re-run at a higher precision", ["from_precision", "to"]
)
SWITCHES = Counter("stream_app_model_switches_total", "Live model switches completed", ["model", "precision"])
ACTIVE_MODEL = Gauge(
    "stream_app_active_model", "1 for the model and precision new windows go to", ["model", "precision"]
)


@dataclasses.dataclass
class _Serving:
    """One loaded model's replicas with their pool, and the registry reference that keeps them loaded."""

    key: ModelKey
    pool: InferencePool
    release: contextlib.ExitStack


class InferenceEngine:
    """Route windows to the active model; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: ModelRegistry[ModelReplicas] | None = None,
        cache: TranscriptCache | None = None,
        use_cache: bool = True,
    ) -> None:
        """Prepare an engine; nothing loads until ``start``.

        Args:
            settings: The configuration (model, precision, replicas, pool, cache, thresholds).
            registry: Where models are loaded (default: the configured replicas within the memory budget).
            cache: The transcript cache (default: built from ``settings.caching``).
            use_cache: False runs without any cache (benchmarks).
        """
        self.settings = settings
        self.registry = registry or replicas_registry(settings)
        self.cache = cache if cache is not None else (build_cache(settings.caching) if use_cache else None)
        self._windows = WindowCache(self.cache, settings) if self.cache is not None else None
        self._rule = EscalationRule(
            logprob_threshold=settings.optimization.adaptive_logprob_threshold,
            compression_ratio_threshold=settings.streaming.compression_ratio_threshold,
            no_speech_threshold=settings.streaming.no_speech_threshold,
        )
        self._lock = threading.Lock()
        self._serving: dict[ModelKey, _Serving] = {}
        self._active: ModelKey | None = None
        self.on_change: Callable[[], None] | None = None

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self, model: str | None = None, precision: str | None = None) -> ModelKey:
        """Load the configured (or given) model and make it active; blocking, so call it off the event loop."""
        key = model_key(self.settings, model, precision)
        self._serve(key)
        self._activate(key)
        return key

    def close(self) -> None:
        """Finish queued windows and release every model."""
        with self._lock:
            serving = list(self._serving.values())
            self._serving.clear()
            self._active = None
        for entry in serving:
            entry.pool.close(wait=True)
            entry.release.close()
        if self.cache is not None:
            self.cache.close()

    @property
    def started(self) -> bool:
        """Whether a model is loaded and active."""
        return self._active is not None

    @property
    def active(self) -> ModelKey:
        """The model and precision new windows go to."""
        if self._active is None:
            raise RuntimeError("the inference engine is not started")
        return self._active

    def loaded(self) -> list[dict[str, Any]]:
        """Describe the loaded models (what `models list` shows for this replica)."""
        active = self._active
        return [
            {
                "model": row.key.model,
                "precision": row.key.precision,
                "device": row.key.device,
                "active": row.key == active,
                "in_flight": row.in_flight,
                "retiring": row.retiring,
                "estimated_bytes": row.estimated_bytes,
            }
            for row in self.registry.snapshot()
        ]

    def saturated(self) -> bool:
        """Whether the active pool's queue is full (the worker pauses consumption then)."""
        entry = self._serving.get(self.active)
        return entry is not None and entry.pool.is_saturated()

    def has_room_for_previews(self) -> bool:
        """Whether a preview may join the queue: fewer windows wait than the workers take in one round.

        Previews are best effort and wait behind every commit decode (the queue serves by priority), so a
        preview queued behind more than a round would hold its stream's next step back while other
        streams' decodes keep coming: a stream runs one step at a time. The round is each worker's batch
        as the memory budget allows it now (one window on a small CPU worker), times the workers.
        """
        entry = self._serving.get(self.active)
        return entry is None or entry.pool.queued < entry.pool.round_size()

    # ---- transcription --------------------------------------------------------------------------

    async def transcribe(self, job: WindowJob) -> WindowTranscript:
        """Transcribe one window on the active model, escalating precision when adaptive mode asks."""
        for _ in range(SWITCH_RETRIES):
            key = self.active
            try:
                result = await self._transcribe_on(key, job)
                break
            except PoolClosed:
                if self.active == key:
                    raise
                # a switch retired this model between reading it and submitting: use the new one
        else:
            raise PoolClosed(f"no model accepted window {job.window_index} of {job.stream_id}")
        higher = self._escalation_target(key, result)
        if higher is None:
            return result
        ESCALATIONS.labels(key.precision, higher.precision).inc()
        try:
            await asyncio.to_thread(self._serve, higher)
            better = await self._transcribe_on(higher, job)
        except PoolClosed:
            return result  # a switch retired the rung meanwhile: the window keeps its first decode
        finally:
            if self._active is None or self._active.model != higher.model:
                await asyncio.to_thread(self._retire, higher)  # the model was switched away meanwhile
        return dataclasses.replace(better, escalated_from=key.precision)

    def transcribe_blocking(self, job: WindowJob) -> WindowTranscript:
        """Transcribe like `transcribe`, from a thread outside an event loop (batch jobs, benchmarks)."""
        key = self.active
        result = self._transcribe_blocking_on(key, job)
        higher = self._escalation_target(key, result)
        if higher is None:
            return result
        ESCALATIONS.labels(key.precision, higher.precision).inc()
        self._serve(higher)
        better = self._transcribe_blocking_on(higher, job)
        return dataclasses.replace(better, escalated_from=key.precision)

    async def _transcribe_on(self, key: ModelKey, job: WindowJob) -> WindowTranscript:
        """Return the cached transcript of ``job`` on ``key``, or a fresh one from its pool (then stored).

        Previews bypass the cache (`WindowCache.admits`): which ones run depends on timing, so a repeat
        of the same audio would not meet their keys; every other decode is a function of the audio and
        the stream's stored state, and a repeat meets its key.
        """
        windows = self._windows if self._windows is not None and self._windows.admits(job) else None
        if windows is not None:
            hit = await asyncio.to_thread(windows.lookup, key, job)
            if hit is not None:
                return hit
        result = await self._pool(key).transcribe_async(job)
        if windows is not None:
            await asyncio.to_thread(windows.store, key, job, result)
        return result

    def _transcribe_blocking_on(self, key: ModelKey, job: WindowJob) -> WindowTranscript:
        windows = self._windows if self._windows is not None and self._windows.admits(job) else None
        hit = windows.lookup(key, job) if windows is not None else None
        if hit is not None:
            return hit
        result = self._pool(key).submit(job).result()
        if windows is not None:
            windows.store(key, job, result)
        return result

    # ---- health ---------------------------------------------------------------------------------

    def oldest_call_seconds(self) -> float:
        """Seconds the longest-running model call in progress has run, over every served model (0: none)."""
        with self._lock:
            pools = [entry.pool for entry in self._serving.values()]
        return max((pool.oldest_call_seconds() for pool in pools), default=0.0)

    def stalled(self) -> bool:
        """Whether a model call has run past ``parallel.task_timeout`` and is still running (a hung call).

        The timed-out window already failed; the thread inside CTranslate2 cannot be interrupted,
        so a replica that stays stalled should be restarted.
        """
        return self.oldest_call_seconds() > self.settings.parallel.task_timeout

    def _escalation_target(self, key: ModelKey, result: WindowTranscript) -> ModelKey | None:
        opt = self.settings.optimization
        if not opt.adaptive_quantization or not self._rule.should_escalate(result):
            return None
        if self._active is None or self._active.model != key.model:
            return None  # switched away while it decoded: the old model's ladder is not loaded again
        step = next_precision(key.precision, opt.precision_ceiling, key.device)
        return None if step is None else ModelKey(key.model, step, key.device)

    # ---- live switching -------------------------------------------------------------------------

    def check_budget(self, model: str, precision: str | None = None) -> None:
        """Refuse a model that would not fit ``optimization.memory_budget`` by itself (0: no budget).

        Raises:
            ModelOverBudget: its estimate alone is over the budget.
        """
        key = model_key(self.settings, model, precision)
        budget = self.registry.memory_budget_bytes
        if budget <= 0:
            return
        needed = self.registry.estimate(key)
        if needed > budget:
            raise ModelOverBudget(
                f"{key} needs an estimated {needed >> 20} MB, over optimization.memory_budget"
                f" ({budget >> 20} MB): not loaded"
            )

    async def switch(self, model: str, precision: str | None = None) -> ModelKey:
        """Load ``model`` beside the active one, send new windows to it, then retire the old one.

        Raises:
            ModelOverBudget: the model would not fit the memory budget by itself (nothing is loaded).
        """
        key = model_key(self.settings, model, precision)
        old = self._active
        if key == old:
            return key
        await asyncio.to_thread(self.check_budget, model, precision)
        started = time.monotonic()
        await asyncio.to_thread(self._serve, key)
        self._activate(key)
        log.info("model switch: new windows go to %s (loaded in %.1f s)", key, time.monotonic() - started)
        if old is not None:
            await asyncio.to_thread(self._retire, old)
        SWITCHES.labels(key.model, key.precision).inc()
        return key

    def _activate(self, key: ModelKey) -> None:
        with self._lock:
            previous, self._active = self._active, key
        if previous is not None:
            ACTIVE_MODEL.labels(previous.model, previous.precision).set(0)
        ACTIVE_MODEL.labels(key.model, key.precision).set(1)
        if self.on_change is not None:
            self.on_change()

    def _retire(self, key: ModelKey) -> None:
        with self._lock:
            entry = self._serving.pop(key, None)
            # the adaptive ladder of the old model goes too: its pools belong to a model no longer served
            ladder = [k for k in self._serving if k.model == key.model and k != self._active]
            extra = [self._serving.pop(k) for k in ladder if self._active is None or k.model != self._active.model]
        for item in [e for e in [entry, *extra] if e is not None]:
            item.pool.close(wait=True)  # windows already queued finish on the old model
            item.release.close()
            self.registry.retire(item.key)
        if self.on_change is not None:
            self.on_change()

    # ---- pools ----------------------------------------------------------------------------------

    def _pool(self, key: ModelKey) -> InferencePool:
        entry = self._serving.get(key)
        if entry is None:
            raise PoolClosed(f"model {key} is not being served")
        return entry.pool

    def _serve(self, key: ModelKey) -> _Serving:
        """Return the pool of ``key``, loading the model and building its pool the first time."""
        with self._lock:
            existing = self._serving.get(key)
        if existing is not None:
            return existing
        stack = contextlib.ExitStack()
        replicas = stack.enter_context(self.registry.acquire(key))
        if self._windows is not None:
            self._windows.prepare(key)  # the cache keys' hash of the weights, before the first window waits on it
        pool = InferencePool(
            list(replicas.transcribers),
            self.settings.parallel,
            name=str(key),
            memory_budget=self.settings.optimization.memory_budget,
            gpu_indexes=replicas.gpu_indexes,
        )
        entry = _Serving(key, pool, stack)
        with self._lock:
            raced = self._serving.get(key)
            if raced is None:
                self._serving[key] = entry
        if raced is not None:  # another thread built it first: keep theirs
            pool.close(wait=False)
            stack.close()
            return raced
        return entry
