"""The inference pool: threads that micro-batch windows of many streams into shared model calls.

Jobs enter one bounded priority queue per replica (a replica is one loaded model, e.g. one per
device); the load balancer picks the replica. A worker thread takes the most urgent job, gathers
more ready jobs for up to ``max_wait`` seconds (``max_batch`` at most) and makes one batched call.

Guarantees callers rely on:
- Backpressure: at most ``task_queue_size`` jobs wait in all queues together. ``submit`` then blocks
  (or raises :class:`PoolSaturated` when built with ``block_when_full=False``); ``is_saturated()`` and
  ``wait_for_capacity()`` let a consumer pause instead of growing memory.
- Order: within one priority, jobs run first-in first-out per replica. With several workers the
  *completion* order may differ, so a caller that needs a stream's results in order awaits that
  stream's futures in the order it submitted them (what the streaming agent does).
- Timeout: ``task_timeout`` counts from the moment a worker takes the job into a model call (queue
  time is bounded by backpressure instead). A job past it fails with :class:`InferenceTimeout` and is
  abandoned: its late result is dropped. The model call itself cannot be interrupted.
- Fault isolation: a failed batched call is retried job by job, so a poisoned window fails only its
  own future (:class:`InferenceFailed`) and the pool goes on serving.
- Cache: with ``cache`` and ``key_fn`` given, a worker asks ``cache.get(key, job.start)`` before the
  model call and stores fresh results with ``cache.put(key, value, job.start)``; a job whose key is
  ``None`` bypasses the cache. Cache errors are logged and ignored (the model answers instead).
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any, Protocol

from stream_app.config.settings import ParallelSettings
from stream_app.inference.balancer import LoadBalancer, Strategy, WorkerStats
from stream_app.inference.batching import (
    FIRST_CALL_BYTES,
    BatchPolicy,
    BatchTranscriber,
    JobFailure,
    batch_limit_for_memory,
    gather_batch,
    run_isolated,
)
from stream_app.inference.exceptions import InferenceError
from stream_app.inference.pool_metrics import PoolMetrics, ResourceProbe, default_metrics
from stream_app.inference.types import WindowJob, WindowTranscript

log = logging.getLogger(__name__)

EWMA_ALPHA = 0.3


class PoolError(InferenceError):
    """Base of the inference pool's errors."""


class PoolSaturated(PoolError):
    """The queue is full and the caller asked not to wait (or its wait ran out)."""


class PoolClosed(PoolError):
    """The pool is closed and takes no more jobs."""


class InferenceTimeout(PoolError):
    """The job ran past ``task_timeout`` and was abandoned."""


class InferenceFailed(PoolError):
    """The model failed on this job (alone, after the batched call failed); ``reason`` says why."""

    def __init__(self, job: WindowJob, reason: str) -> None:
        super().__init__(f"stream {job.stream_id!r} window {job.window_index}: {reason}")
        self.stream_id = job.stream_id
        self.window_index = job.window_index
        self.reason = reason


class TranscriptCache(Protocol):
    """The two calls the pool makes on a cache placed in front of the model."""

    def get(self, key: str, window_start: float) -> WindowTranscript | None:
        """Return the stored transcript re-timed to ``window_start``, or ``None``."""
        ...

    def put(self, key: str, value: WindowTranscript, window_start: float) -> None:
        """Store a transcript made for a window starting at ``window_start``."""
        ...


@dataclass(order=True)
class _Task:
    priority: int
    seq: int
    job: WindowJob = field(compare=False)
    future: Future[WindowTranscript] = field(compare=False)
    submitted_at: float = field(compare=False)


@dataclass
class _Replica:
    index: int
    transcriber: BatchTranscriber
    gpu_index: int | None
    queue: list[_Task] = field(default_factory=list)
    in_flight: int = 0
    ewma_seconds: float = 0.0


class InferencePool:
    """Shared, bounded, batching executor for window jobs; see the module docstring for guarantees."""

    def __init__(
        self,
        replicas: BatchTranscriber | Sequence[BatchTranscriber],
        parallel: ParallelSettings,
        *,
        name: str = "default",
        block_when_full: bool = True,
        cache: TranscriptCache | None = None,
        key_fn: Callable[[WindowJob], str | None] | None = None,
        metrics: PoolMetrics | None = None,
        memory_budget: int = 0,
        gpu_indexes: Sequence[int | None] | None = None,
    ) -> None:
        transcribers = [replicas] if not isinstance(replicas, Sequence) else list(replicas)
        if not transcribers:
            raise ValueError("the pool needs at least one transcriber")
        gpus = list(gpu_indexes) if gpu_indexes is not None else [None] * len(transcribers)
        self.name = name
        self._replicas = [_Replica(i, t, gpus[i]) for i, t in enumerate(transcribers)]
        self._policy = BatchPolicy(parallel.max_batch, parallel.max_wait)
        self._capacity = parallel.task_queue_size
        self._task_timeout = parallel.task_timeout
        self._block = block_when_full
        self._balancer = LoadBalancer(_strategy(parallel.load_balancing))
        self._probe = ResourceProbe(memory_budget, parallel.gpu_memory_per_worker)
        self._cache = cache if key_fn is not None else None
        self._key_fn = key_fn
        self._metrics = metrics if metrics is not None else default_metrics()
        self._cond = threading.Condition()
        self._pending = 0
        self._seq = itertools.count()
        self._closed = False
        self._warm = False
        self._deadlines: list[tuple[float, int, _Task]] = []
        self._watch = threading.Condition()
        threads = max(parallel.max_workers, len(self._replicas))
        self._threads = [
            threading.Thread(
                target=self._work,
                args=(self._replicas[i % len(self._replicas)],),
                name=f"inference-{name}-{i}",
                daemon=True,
            )
            for i in range(threads)
        ]
        self._watchdog = threading.Thread(target=self._watch_deadlines, name=f"inference-{name}-watchdog", daemon=True)
        for thread in [*self._threads, self._watchdog]:
            thread.start()

    # ---- submission -------------------------------------------------------------------------

    def submit(
        self, job: WindowJob, *, block: bool | None = None, timeout: float | None = None
    ) -> Future[WindowTranscript]:
        """Queue a job and return the future of its transcript.

        When the queue is full this waits (up to ``timeout`` s) or, with ``block=False`` (default:
        the pool's ``block_when_full``), raises :class:`PoolSaturated` at once.
        """
        wait = self._block if block is None else block
        future: Future[WindowTranscript] = Future()
        with self._cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                if self._closed:
                    raise PoolClosed(f"pool {self.name!r} is closed")
                if self._pending < self._capacity:
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if not wait or (remaining is not None and remaining <= 0):
                    self._metrics.rejected.labels(self.name).inc()
                    raise PoolSaturated(f"pool {self.name!r} has {self._pending} jobs queued (limit {self._capacity})")
                self._cond.wait(remaining)
            index = self._balancer.choose(self._stats_locked())
            replica = self._replicas[index]
            task = _Task(int(job.priority), next(self._seq), job, future, time.monotonic())
            heapq.heappush(replica.queue, task)
            self._pending += 1
            self._cond.notify_all()
            stats = self._replica_stats(replica)
        self._metrics.export_worker(self.name, stats)
        return future

    async def submit_async(self, job: WindowJob) -> asyncio.Future[WindowTranscript]:
        """Queue a job without blocking the event loop; waits (asynchronously) while the pool is full.

        Returns an asyncio future to await for the transcript, so a caller can admit several jobs
        before awaiting any of them.
        """
        while True:
            try:
                return asyncio.wrap_future(self.submit(job, block=False))
            except PoolSaturated:
                await asyncio.to_thread(self.wait_for_capacity, 0.25)

    async def transcribe_async(self, job: WindowJob) -> WindowTranscript:
        """Submit a job and await its transcript, never blocking the event loop."""
        return await (await self.submit_async(job))

    def is_saturated(self) -> bool:
        """Whether the queue is full: a consumer should pause until ``wait_for_capacity`` returns."""
        with self._cond:
            return self._pending >= self._capacity

    def wait_for_capacity(self, timeout: float | None = None) -> bool:
        """Block until a job can be queued (or the pool closed); ``False`` when ``timeout`` ran out."""
        with self._cond:
            return self._cond.wait_for(lambda: self._closed or self._pending < self._capacity, timeout)

    @property
    def queued(self) -> int:
        """Jobs waiting in all queues."""
        with self._cond:
            return self._pending

    def stats(self) -> list[WorkerStats]:
        """Return a snapshot of every replica's load (what the balancer and the metrics see)."""
        with self._cond:
            return self._stats_locked()

    # ---- shutdown ---------------------------------------------------------------------------

    def close(self, wait: bool = True, *, cancel_pending: bool = False) -> None:
        """Stop taking jobs; queued jobs still run unless ``cancel_pending``; ``wait`` joins the workers."""
        with self._cond:
            self._closed = True
            if cancel_pending:
                for replica in self._replicas:
                    for task in replica.queue:
                        task.future.cancel()
                    replica.queue.clear()
                self._pending = 0
            self._cond.notify_all()
        if wait:
            for thread in self._threads:
                thread.join()
        with self._watch:
            self._watch.notify_all()
        if wait:
            self._watchdog.join()

    def __enter__(self) -> InferencePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(wait=True)

    # ---- workers ----------------------------------------------------------------------------

    def _work(self, replica: _Replica) -> None:
        while True:
            first = self._take(replica, None)
            if first is None:
                return
            batch = gather_batch(first, lambda t: self._take(replica, t), self._memory_policy())
            try:
                self._run(replica, batch)
                self._warm = True  # the one-off working memory is now part of the measured RSS
            except Exception as exc:  # a bug here must not kill the worker thread
                log.exception("inference worker %s failed on a batch", replica.index)
                for task in batch:
                    _settle(task.future, exc=InferenceFailed(task.job, f"{type(exc).__name__}: {exc}"))

    def _memory_policy(self) -> BatchPolicy:
        """Shrink the batch when the process nears its memory budget (each window costs working memory)."""
        rss, budget = self._probe.host_memory(max_age=0.0)  # a batch decision wants today's figure
        reserve = 0 if self._warm else FIRST_CALL_BYTES
        limit = batch_limit_for_memory(self._policy.max_batch, rss, budget, reserve=reserve)
        if limit == self._policy.max_batch:
            return self._policy
        return BatchPolicy(limit, self._policy.max_wait)

    def _take(self, replica: _Replica, timeout: float | None) -> _Task | None:
        """Pop the most urgent live job; wait up to ``timeout`` s (``None``: until one comes or close)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                while replica.queue:
                    task = heapq.heappop(replica.queue)
                    self._pending -= 1
                    self._cond.notify_all()
                    if task.future.set_running_or_notify_cancel():
                        return task
                if self._closed:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def _run(self, replica: _Replica, batch: list[_Task]) -> None:
        now = time.monotonic()
        for task in batch:
            self._metrics.queue_wait_seconds.labels(self.name).observe(now - task.submitted_at)
            self._track(task, now + self._task_timeout)
        todo = [task for task in batch if not self._answer_from_cache(task)]
        if not todo:
            return
        with self._cond:
            replica.in_flight += len(todo)
        started = time.monotonic()
        try:
            outcomes = run_isolated(replica.transcriber, [task.job for task in todo])
        finally:
            elapsed = time.monotonic() - started
            with self._cond:
                replica.in_flight -= len(todo)
                per_job = elapsed / len(todo)
                replica.ewma_seconds = (
                    per_job
                    if replica.ewma_seconds == 0
                    else EWMA_ALPHA * per_job + (1 - EWMA_ALPHA) * replica.ewma_seconds
                )
                stats = self._replica_stats(replica)
            worker = str(replica.index)
            self._metrics.batch_size.labels(self.name, worker).observe(len(todo))
            self._metrics.inference_seconds.labels(self.name, worker).observe(elapsed)
            self._metrics.export_worker(self.name, stats)
        for task, outcome in zip(todo, outcomes, strict=True):
            if isinstance(outcome, JobFailure):
                self._metrics.errors.labels(self.name, worker).inc()
                log.warning(
                    "inference failed for %s/%s: %s",
                    task.job.stream_id,
                    task.job.window_index,
                    outcome.reason,
                )
                _settle(task.future, exc=InferenceFailed(task.job, outcome.reason))
                continue
            self._store_in_cache(task.job, outcome)
            _settle(task.future, result=outcome)

    # ---- cache ------------------------------------------------------------------------------

    def _answer_from_cache(self, task: _Task) -> bool:
        if self._cache is None or self._key_fn is None:
            return False
        try:
            key = self._key_fn(task.job)
            hit = self._cache.get(key, task.job.start) if key is not None else None
        except Exception:
            log.warning("cache look-up failed; the model answers instead", exc_info=True)
            return False
        if hit is None:
            return False
        self._metrics.cache_hits.labels(self.name).inc()
        _settle(task.future, result=dataclasses.replace(hit, cached=True))
        return True

    def _store_in_cache(self, job: WindowJob, value: WindowTranscript) -> None:
        if self._cache is None or self._key_fn is None:
            return
        try:
            key = self._key_fn(job)
            if key is not None:
                self._cache.put(key, value, job.start)
        except Exception:
            log.warning("cache store failed", exc_info=True)

    # ---- timeouts ---------------------------------------------------------------------------

    def _track(self, task: _Task, deadline: float) -> None:
        with self._watch:
            heapq.heappush(self._deadlines, (deadline, task.seq, task))
            self._watch.notify()

    def _watch_deadlines(self) -> None:
        with self._watch:
            while True:
                while self._deadlines and self._deadlines[0][2].future.done():
                    heapq.heappop(self._deadlines)
                if self._closed and not any(t.is_alive() for t in self._threads):
                    return
                if not self._deadlines:
                    self._watch.wait(0.5 if self._closed else None)
                    continue
                deadline, _, task = self._deadlines[0]
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    self._watch.wait(remaining)
                    continue
                heapq.heappop(self._deadlines)
                job = task.job
                reason = f"stream {job.stream_id!r} window {job.window_index} ran past {self._task_timeout} s"
                if _settle(task.future, exc=InferenceTimeout(reason)):
                    self._metrics.timeouts.labels(self.name).inc()
                    log.warning("inference timed out for %s/%s", task.job.stream_id, task.job.window_index)

    # ---- stats ------------------------------------------------------------------------------

    def _stats_locked(self) -> list[WorkerStats]:
        return [self._replica_stats(r) for r in self._replicas]

    def _replica_stats(self, replica: _Replica) -> WorkerStats:
        rss, budget = self._probe.host_memory()
        gpu_used, gpu_limit = self._probe.gpu_memory(replica.gpu_index)
        return WorkerStats(
            index=replica.index,
            queue_length=len(replica.queue),
            in_flight=replica.in_flight,
            ewma_seconds=replica.ewma_seconds,
            rss_bytes=rss,
            memory_budget_bytes=budget,
            gpu_memory_bytes=gpu_used,
            gpu_memory_limit_bytes=gpu_limit,
        )


def _settle(future: Future[Any], *, result: Any = None, exc: BaseException | None = None) -> bool:
    """Complete a future unless it is already done (timed out or cancelled); ``True`` if this did it."""
    try:
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)
        return True
    except InvalidStateError:
        return False


def _strategy(name: str) -> Strategy:
    if name == "round_robin":
        return "round_robin"
    if name == "least_loaded":
        return "least_loaded"
    return "adaptive"
