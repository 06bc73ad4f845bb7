"""The pool's queue: one priority heap per replica under one bound, with backpressure.

At most ``capacity`` jobs wait in all heaps together. ``put`` then blocks (or raises
:class:`PoolSaturated` when asked not to wait); ``is_saturated`` and ``wait_for_capacity`` let a
consumer pause instead of growing memory. Within one priority, the job of the stream served longest
ago leaves first (`WindowJob.served_at`: a stream just taken over, or back from a pause, before
streams decoded a second ago), then first-in first-out (every job of a file, and jobs that give no
time). A stream runs one decode at a time, so no stream waits for more than one decode of each other
stream. A preview (interim priority) leaves only when no commit decode waits, so under load it can
wait for ever while its stream, which runs one step at a time, waits on it: one that waited longer than
``preview_max_wait`` fails with :class:`PreviewExpired` the next time a worker takes a job. Where a
job goes is the caller's choice (the load balancer's), made under the queue's lock from a snapshot of
every replica's load.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from stream_app.inference.exceptions import InferenceError
from stream_app.inference.types import Priority, WindowJob, WindowTranscript


class PoolError(InferenceError):
    """Base of the inference pool's errors."""


class PoolSaturated(PoolError):
    """The queue is full and the caller asked not to wait (or its wait ran out)."""


class PoolClosed(PoolError):
    """The pool is closed and takes no more jobs."""


class PreviewExpired(PoolError):
    """A preview waited behind commit decodes longer than the pool lets previews wait: it was not run."""


@dataclass(order=True)
class Task:
    """A queued job with its future; ordered by priority, then when its stream was last served, then submission."""

    priority: int
    served_at: float
    seq: int
    job: WindowJob = field(compare=False)
    future: Future[WindowTranscript] = field(compare=False)
    submitted_at: float = field(compare=False)


class JobQueue:
    """Bounded priority heaps, one per replica, sharing one condition variable."""

    def __init__(self, replicas: int, capacity: int, name: str = "default", *, preview_max_wait: float = 0.0) -> None:
        """Make ``replicas`` empty heaps holding at most ``capacity`` jobs together (previews: see the module)."""
        self.name = name
        self.capacity = capacity
        self.preview_max_wait = preview_max_wait  # 0: previews wait as long as it takes
        self.cond = threading.Condition()
        self._heaps: list[list[Task]] = [[] for _ in range(replicas)]
        self._pending = 0
        self._seq = itertools.count()
        self.closed = False

    def put(self, job: WindowJob, choose: Callable[[], int], *, wait: bool, timeout: float | None) -> Task:
        """Queue ``job`` on the replica ``choose()`` names (called under the lock, once there is room).

        Raises:
            PoolClosed: the queue is closed.
            PoolSaturated: it is full and ``wait`` is False or ``timeout`` seconds ran out.
        """
        with self.cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                if self.closed:
                    raise PoolClosed(f"pool {self.name!r} is closed")
                if self._pending < self.capacity:
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if not wait or (remaining is not None and remaining <= 0):
                    raise PoolSaturated(f"pool {self.name!r} has {self._pending} jobs queued (limit {self.capacity})")
                self.cond.wait(remaining)
            task = Task(int(job.priority), job.served_at, next(self._seq), job, Future(), time.monotonic())
            heapq.heappush(self._heaps[choose()], task)
            self._pending += 1
            self.cond.notify_all()
            return task

    def take(self, replica: int, timeout: float | None, *, company: bool = False) -> Task | None:
        """Pop the replica's most urgent live job; wait up to ``timeout`` s (None: until one comes or close).

        A cancelled job is skipped. Returns None when the wait ran out or the queue closed empty. With
        ``company`` (filling a batch) an isolated job is left where it is and None returned: it will
        start a batch of its own.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        heap = self._heaps[replica]
        with self.cond:
            while True:
                self._expire_previews(time.monotonic())
                if company and heap and heap[0].job.isolated:
                    return None
                while heap:
                    task = heapq.heappop(heap)
                    self._pending -= 1
                    self.cond.notify_all()
                    if task.future.set_running_or_notify_cancel():
                        return task
                if self.closed:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self.cond.wait(remaining)

    def _expire_previews(self, now: float) -> None:
        """Fail the previews that waited longer than ``preview_max_wait`` (the caller holds ``cond``)."""
        if self.preview_max_wait <= 0:
            return
        for heap in self._heaps:
            stale = [t for t in heap if t.priority == Priority.INTERIM and now - t.submitted_at > self.preview_max_wait]
            if not stale:
                continue
            gone = {t.seq for t in stale}
            heap[:] = [t for t in heap if t.seq not in gone]
            heapq.heapify(heap)
            self._pending -= len(stale)
            self.cond.notify_all()
            for task in stale:
                if task.future.set_running_or_notify_cancel():
                    waited = now - task.submitted_at
                    task.future.set_exception(
                        PreviewExpired(
                            f"preview {task.job.window_index} of {task.job.stream_id} waited {waited:.2f} s"
                            f" behind commit decodes (limit {self.preview_max_wait:g} s)"
                        )
                    )

    def close(self, *, cancel_pending: bool) -> None:
        """Take no more jobs; with ``cancel_pending`` cancel those still waiting."""
        with self.cond:
            self.closed = True
            if cancel_pending:
                for heap in self._heaps:
                    for task in heap:
                        task.future.cancel()
                    heap.clear()
                self._pending = 0
            self.cond.notify_all()

    def length(self, replica: int) -> int:
        """Jobs waiting for one replica (call with ``cond`` held for a consistent snapshot)."""
        return len(self._heaps[replica])

    @property
    def pending(self) -> int:
        """Jobs waiting in all heaps."""
        with self.cond:
            return self._pending

    def is_saturated(self) -> bool:
        """Whether the queue is full."""
        with self.cond:
            return self._pending >= self.capacity

    def wait_for_capacity(self, timeout: float | None = None) -> bool:
        """Block until a job can be queued (or the queue closed); False when ``timeout`` ran out."""
        with self.cond:
            return self.cond.wait_for(lambda: self.closed or self._pending < self.capacity, timeout)
