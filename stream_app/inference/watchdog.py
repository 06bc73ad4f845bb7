"""Timeouts of jobs inside model calls, and the model calls that are still stuck.

``task_timeout`` counts from the moment a worker takes a job into a model call (queue time is
bounded by backpressure instead). A job past it fails with :class:`InferenceTimeout` and is
abandoned: its late result is dropped. A call that has returned is past timing out: whatever it
returned is its jobs' outcome, however close to the deadline it came back. The model call itself
cannot be interrupted, so the watchdog also keeps the start time of every call in progress:
``oldest_call_seconds`` and ``stalled`` tell a health check that a thread has been inside
CTranslate2 longer than the timeout (a hung call).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import Any

from stream_app.inference.scheduling import PoolError, Task

log = logging.getLogger(__name__)


class InferenceTimeout(PoolError):
    """The job ran past ``task_timeout`` and was abandoned."""


def settle(future: Future[Any], *, result: Any = None, exc: BaseException | None = None) -> bool:
    """Complete a future unless it is already done (timed out or cancelled); True if this did it."""
    try:
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)
        return True
    except InvalidStateError:
        return False


class Watchdog:
    """A thread that fails jobs past their deadline, plus the register of model calls in progress."""

    def __init__(
        self,
        task_timeout: float,
        *,
        name: str = "default",
        on_timeout: Callable[[Task], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Start watching; ``on_timeout`` is told of each job this watchdog failed."""
        self.task_timeout = task_timeout
        self._on_timeout = on_timeout
        self._clock = clock
        self._cond = threading.Condition()
        self._deadlines: list[tuple[float, int, Task]] = []
        self._calls: dict[int, float] = {}
        self._call_jobs: dict[int, set[int]] = {}  # each call in progress: its tasks' seq
        self._ids = itertools.count()
        self._closed = False
        self._thread = threading.Thread(target=self._watch, name=f"inference-{name}-watchdog", daemon=True)
        self._thread.start()

    # ---- model calls -----------------------------------------------------------------------

    def call_started(self, tasks: list[Task]) -> int:
        """Record a model call beginning now for ``tasks`` (each gets its deadline); return its id."""
        now = self._clock()
        with self._cond:
            call = next(self._ids)
            self._calls[call] = now
            self._call_jobs[call] = {task.seq for task in tasks}
            for task in tasks:
                heapq.heappush(self._deadlines, (now + self.task_timeout, task.seq, task))
            self._cond.notify()
        return call

    def call_ended(self, call: int) -> None:
        """Record that the call ``call_started`` returned ``call`` for is over: its jobs no longer time out."""
        with self._cond:
            self._calls.pop(call, None)
            ended = self._call_jobs.pop(call, set())
            if ended:
                self._deadlines = [entry for entry in self._deadlines if entry[1] not in ended]
                heapq.heapify(self._deadlines)

    def oldest_call_seconds(self) -> float:
        """Seconds the longest-running model call in progress has run (0 when none runs)."""
        with self._cond:
            if not self._calls:
                return 0.0
            return max(0.0, self._clock() - min(self._calls.values()))

    def stalled(self) -> bool:
        """Whether a model call has run past ``task_timeout`` and is still running."""
        return self.oldest_call_seconds() > self.task_timeout

    # ---- deadlines -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop watching (call once the workers are done: jobs still running are no longer failed)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def _watch(self) -> None:
        with self._cond:
            while not self._closed:
                while self._deadlines and self._deadlines[0][2].future.done():
                    heapq.heappop(self._deadlines)
                if not self._deadlines:
                    self._cond.wait()
                    continue
                deadline, _, task = self._deadlines[0]
                remaining = deadline - self._clock()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                heapq.heappop(self._deadlines)
                job = task.job
                reason = f"stream {job.stream_id!r} window {job.window_index} ran past {self.task_timeout} s"
                if task.future.done():
                    continue
                if self._on_timeout is not None:  # told first, so that whoever sees the failure sees it counted
                    self._on_timeout(task)
                settle(task.future, exc=InferenceTimeout(reason))
                log.warning("inference timed out for %s/%s", job.stream_id, job.window_index)
