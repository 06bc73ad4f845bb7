"""The inference pool: threads that micro-batch windows of many streams into calls on model replicas.

A replica is one loaded model (`stream_app.inference.replicas`); the load balancer picks the replica
whose queue a job joins (`JobQueue`, bounded, by priority). Each replica has its own worker threads;
a worker takes the most urgent job, gathers more ready jobs for up to ``max_wait`` seconds
(``max_batch`` at most, fewer near the memory budget) and makes one batched call.

Guarantees callers rely on:
- Backpressure and order: see `stream_app.inference.scheduling`. With several workers the
  *completion* order may differ, so a caller that needs a stream's results in order awaits that
  stream's futures in the order it submitted them (what the streaming agent does).
- Timeout: see `stream_app.inference.watchdog`; ``stalled()`` says a call is stuck past it.
- Fault isolation: a failed batched call is retried job by job, so a poisoned window fails only its
  own future (:class:`InferenceFailed`) and the pool goes on serving.

The pool knows nothing of caching: the engine looks a window up before it submits it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

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
from stream_app.inference.pool_metrics import PoolMetrics, ResourceProbe, default_metrics
from stream_app.inference.quarantine import CallGate
from stream_app.inference.scheduling import JobQueue, PoolClosed, PoolError, PoolSaturated, PreviewExpired, Task
from stream_app.inference.types import WindowJob, WindowTranscript
from stream_app.inference.watchdog import InferenceTimeout, Watchdog, settle

__all__ = [
    "InferenceFailed",
    "InferencePool",
    "InferenceTimeout",
    "PoolClosed",
    "PoolError",
    "PoolSaturated",
    "PreviewExpired",
]

log = logging.getLogger(__name__)

EWMA_ALPHA = 0.3


class InferenceFailed(PoolError):
    """The model failed on this job (alone, after the batched call failed); ``reason`` says why."""

    def __init__(self, job: WindowJob, reason: str) -> None:
        """Name the stream and window that failed."""
        super().__init__(f"stream {job.stream_id!r} window {job.window_index}: {reason}")
        self.stream_id = job.stream_id
        self.window_index = job.window_index
        self.reason = reason


@dataclass
class _Replica:
    index: int
    transcriber: BatchTranscriber
    gpu_index: int | None
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
        metrics: PoolMetrics | None = None,
        memory_budget: int = 0,
        gpu_indexes: Sequence[int | None] | None = None,
    ) -> None:
        """Start the worker threads: ``inter_threads`` per replica, ``max_workers`` at least in all.

        Args:
            replicas: One model, or one per replica; worker ``i`` serves replica ``i % len(replicas)``.
            parallel: Queue bound, batching, timeout, balancing strategy and thread counts.
            name: The pool's label in metrics and thread names.
            block_when_full: What ``submit`` does on a full queue by default (wait, or raise).
            metrics: Where to export figures (default: the process-wide registry).
            memory_budget: Process memory the batches must stay under (0: none).
            gpu_indexes: Each replica's CUDA device, for GPU memory scoring (None on CPU).
        """
        transcribers = [replicas] if not isinstance(replicas, Sequence) else list(replicas)
        if not transcribers:
            raise ValueError("the pool needs at least one transcriber")
        gpus = list(gpu_indexes) if gpu_indexes is not None else [None] * len(transcribers)
        self.name = name
        self._replicas = [_Replica(i, t, gpus[i]) for i, t in enumerate(transcribers)]
        self._policy = BatchPolicy(parallel.max_batch, parallel.max_wait)
        self._block = block_when_full
        self._balancer = LoadBalancer(_strategy(parallel.load_balancing))
        self._probe = ResourceProbe(memory_budget, parallel.gpu_memory_per_worker)
        self._metrics = metrics if metrics is not None else default_metrics()
        self._queue = JobQueue(
            len(self._replicas), parallel.task_queue_size, name, preview_max_wait=parallel.preview_max_wait
        )
        self._watchdog = Watchdog(
            parallel.task_timeout, name=name, on_timeout=lambda _: self._metrics.timeouts.labels(name).inc()
        )
        self._calls = CallGate()
        self._warm = False
        count = max(parallel.max_workers, len(self._replicas) * parallel.inter_threads)
        self._live_workers = count
        self._threads = [
            threading.Thread(
                target=self._work,
                args=(self._replicas[i % len(self._replicas)],),
                name=f"inference-{name}-{i}",
                daemon=True,
            )
            for i in range(count)
        ]
        for thread in self._threads:
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
        chosen: list[_Replica] = []

        def choose() -> int:
            index = self._balancer.choose([self._replica_stats(r) for r in self._replicas])
            chosen.append(self._replicas[index])
            return index

        try:
            task = self._queue.put(job, choose, wait=wait, timeout=timeout)
        except PoolSaturated:
            self._metrics.rejected.labels(self.name).inc()
            raise
        with self._queue.cond:
            stats = self._replica_stats(chosen[0])
        self._metrics.export_worker(self.name, stats)
        return task.future

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
        return self._queue.is_saturated()

    def wait_for_capacity(self, timeout: float | None = None) -> bool:
        """Block until a job can be queued (or the pool closed); ``False`` when ``timeout`` ran out."""
        return self._queue.wait_for_capacity(timeout)

    def round_size(self) -> int:
        """Windows the workers take in one round: each one's batch as the memory budget allows it, times the workers."""
        return self._batch_limit(max_age=None) * len(self._threads)

    def _batch_limit(self, max_age: float | None) -> int:
        rss, budget = self._probe.host_memory(max_age=max_age)
        reserve = 0 if self._warm else FIRST_CALL_BYTES
        return batch_limit_for_memory(self._policy.max_batch, rss, budget, reserve=reserve)

    @property
    def queued(self) -> int:
        """Jobs waiting in all queues."""
        return self._queue.pending

    def stats(self) -> list[WorkerStats]:
        """Return a snapshot of every replica's load (what the balancer and the metrics see)."""
        with self._queue.cond:
            return [self._replica_stats(r) for r in self._replicas]

    def oldest_call_seconds(self) -> float:
        """Seconds the longest-running model call in progress has run (0 when none runs)."""
        return self._watchdog.oldest_call_seconds()

    def stalled(self) -> bool:
        """Whether a model call has run past ``task_timeout`` and is still running (a hung call)."""
        return self._watchdog.stalled()

    # ---- shutdown ---------------------------------------------------------------------------

    def close(self, wait: bool = True, *, cancel_pending: bool = False) -> None:
        """Stop taking jobs; queued jobs still run unless ``cancel_pending``; ``wait`` joins the workers."""
        self._queue.close(cancel_pending=cancel_pending)
        if wait:
            for thread in self._threads:
                thread.join()

    def __enter__(self) -> InferencePool:
        """Use the pool in a ``with`` block that closes it."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the pool, letting queued jobs finish."""
        self.close(wait=True)

    # ---- workers ----------------------------------------------------------------------------

    def _work(self, replica: _Replica) -> None:
        try:
            while True:
                first = self._queue.take(replica.index, None)
                if first is None:
                    return
                if first.job.isolated:
                    batch = [first]
                else:
                    batch = gather_batch(
                        first, lambda t: self._queue.take(replica.index, t, company=True), self._memory_policy()
                    )
                try:
                    self._run(replica, batch)
                    self._warm = True  # the one-off working memory is now part of the measured RSS
                except Exception as exc:  # a bug here must not kill the worker thread
                    log.exception("inference worker %s failed on a batch", replica.index)
                    for task in batch:
                        settle(task.future, exc=InferenceFailed(task.job, f"{type(exc).__name__}: {exc}"))
        finally:
            with self._queue.cond:
                self._live_workers -= 1
                last = self._live_workers == 0
            if last:  # the last worker out stops the watchdog: no call can still be running
                self._watchdog.close()

    def _memory_policy(self) -> BatchPolicy:
        """Shrink the batch when the process nears its memory budget (each window costs working memory)."""
        limit = self._batch_limit(max_age=0.0)  # a batch decision wants today's figure
        if limit == self._policy.max_batch:
            return self._policy
        return BatchPolicy(limit, self._policy.max_wait)

    def _run(self, replica: _Replica, batch: list[Task]) -> None:
        now = time.monotonic()
        for task in batch:
            self._metrics.queue_wait_seconds.labels(self.name).observe(now - task.submitted_at)
        with self._queue.cond:
            replica.in_flight += len(batch)
        elapsed = 0.0
        try:
            # a suspect stream's window runs with no other call in the process (`quarantine`)
            with self._calls.enter(exclusive=any(task.job.isolated for task in batch)):
                for task in batch:
                    _announce(task.job, task.job.on_start, "start")
                call = self._watchdog.call_started(batch)
                started = time.monotonic()
                try:
                    outcomes = run_isolated(replica.transcriber, [task.job for task in batch])
                finally:
                    self._watchdog.call_ended(call)
                    elapsed = time.monotonic() - started
                for task in batch:  # still inside the gate: the next isolated call starts after these
                    if not task.future.done():  # abandoned (timed out): its late return is dropped, as its result
                        _announce(task.job, task.job.on_finish, "finish")
        finally:
            with self._queue.cond:
                replica.in_flight -= len(batch)
                per_job = elapsed / len(batch)
                replica.ewma_seconds = (
                    per_job
                    if replica.ewma_seconds == 0
                    else EWMA_ALPHA * per_job + (1 - EWMA_ALPHA) * replica.ewma_seconds
                )
                stats = self._replica_stats(replica)
            worker = str(replica.index)
            self._metrics.batch_size.labels(self.name, worker).observe(len(batch))
            self._metrics.inference_seconds.labels(self.name, worker).observe(elapsed)
            self._metrics.export_worker(self.name, stats)
        for task, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, JobFailure):
                self._metrics.errors.labels(self.name, worker).inc()
                log.warning("inference failed for %s/%s: %s", task.job.stream_id, task.job.window_index, outcome.reason)
                settle(task.future, exc=InferenceFailed(task.job, outcome.reason))
            else:
                settle(task.future, result=outcome)

    # ---- stats ------------------------------------------------------------------------------

    def _replica_stats(self, replica: _Replica) -> WorkerStats:
        """One replica's load (call with the queue's lock held)."""
        rss, budget = self._probe.host_memory()
        gpu_used, gpu_limit = self._probe.gpu_memory(replica.gpu_index)
        return WorkerStats(
            index=replica.index,
            queue_length=self._queue.length(replica.index),
            in_flight=replica.in_flight,
            ewma_seconds=replica.ewma_seconds,
            rss_bytes=rss,
            memory_budget_bytes=budget,
            gpu_memory_bytes=gpu_used,
            gpu_memory_limit_bytes=gpu_limit,
        )


def _announce(job: WindowJob, hook: Callable[[], None] | None, what: str) -> None:
    """Tell the job's owner that the model is about to run it, or has run it (a failing hook is logged)."""
    if hook is None:
        return
    try:
        hook()
    except Exception:
        log.exception("%s hook of %s/%s failed", what, job.stream_id, job.window_index)


def _strategy(name: str) -> Strategy:
    if name == "round_robin":
        return "round_robin"
    if name == "least_loaded":
        return "least_loaded"
    return "adaptive"
