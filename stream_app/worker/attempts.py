"""Counting a step's attempt when the model starts its windows, so crashes are blamed on what ran.

A stream whose windows were in the model when its worker died may hold a window that kills the
process (a poison window); after ``max_window_attempts`` such deaths its windows are dead-lettered
instead of crashing every replica that takes the stream over. A window that only waited in the
pool's queue when a replica was killed (an operator's SIGKILL, an eviction, an OOM kill elsewhere in
the process) did nothing wrong, so the count is taken when the model starts the window, from the pool
thread, and the model waits until the count is durable.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

MARK_TIMEOUT = 10.0  # the longest a model thread waits for the count (a broker outage): then it runs anyway


class AttemptGate:
    """Counts one step's attempt once, the first time the model starts one of its windows.

    Called on an inference pool thread (`WindowJob.on_start`): schedules ``mark`` on the worker's event
    loop and waits until it has completed (at most ``timeout``), so the count is on the changelog before
    the model runs. Later windows of the same step wait for the same count.

    `finished` (`WindowJob.on_finish`, for an isolated window: one that runs alone, so no other window
    of the step is in the model) takes the count back with ``release`` once the model has returned the
    window, and waits until that is durable too. The step's own state write, which clears the count,
    comes later, after the merge and the broker's acknowledgement of the segments; a worker killed in
    between by the next suspect window must not blame this one, which ran to its end. `returned` (the
    ``on_finish`` of an ordinary window) forgets the count in memory only.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        mark: Callable[[], Awaitable[object]],
        release: Callable[[], Awaitable[object]] | None = None,
        timeout: float = MARK_TIMEOUT,
        forget: Callable[[], None] | None = None,
    ) -> None:
        self._loop = loop
        self._mark = mark
        self._release = release
        self._forget = forget
        self._timeout = timeout
        self._lock = threading.Lock()
        self._future: concurrent.futures.Future[None] | None = None

    async def _run(self) -> None:
        await self._mark()

    async def _take_back(self, marked: concurrent.futures.Future[None]) -> None:
        assert self._release is not None
        try:
            await asyncio.wrap_future(marked)  # after the count, never before it (a mark that timed out)
        except Exception:  # the count itself failed: there is nothing to take back
            return
        await self._release()

    def __call__(self) -> None:
        """Count the attempt (once per step) and wait until it is durable; never raises."""
        with self._lock:
            if self._future is None:
                self._future = asyncio.run_coroutine_threadsafe(self._run(), self._loop)
            future = self._future
        self._wait(future, "counted")

    def finished(self) -> None:
        """Take the attempt back (the model returned the window) and wait until that is durable; never raises."""
        with self._lock:
            marked, self._future = self._future, None  # a later start counts afresh
        if self._release is None or marked is None:
            return
        self._wait(asyncio.run_coroutine_threadsafe(self._take_back(marked), self._loop), "taken back")

    def returned(self) -> None:
        """Take the count back in memory only: the model returned an ordinary (not isolated) step's window.

        `WindowJob.on_finish` on the pool's thread, for a result or a failure alike: a retry after it
        counts afresh, and a decode the model failed on every try holds no count. A call the pool
        abandoned past its timeout announces nothing: a retry reuses its count, and the count goes when
        a try returns or with the state write. Nothing is written: the stored count
        stays until the step's state write replaces the header it counts against (a worker killed
        before that blames the window once more, as before). Without this, a step that publishes
        nothing (its text unchanged) kept its count, so the stream's next decode ran alone in the model
        as if a worker had died in it, without previews, and a later crash counted every such step.
        ``forget`` runs on the loop after the count itself (which may still be on its way), never before.
        """
        with self._lock:
            marked, self._future = self._future, None
        if marked is None or self._forget is None:
            return
        forget = self._forget

        def counted(future: concurrent.futures.Future[None]) -> None:
            if not future.cancelled() and future.exception() is None and not self._loop.is_closed():
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the worker has stopped
                    self._loop.call_soon_threadsafe(forget)

        marked.add_done_callback(counted)

    def _wait(self, future: concurrent.futures.Future[None], what: str) -> None:
        if _on_loop(self._loop):  # never block the loop the count runs on (a transcriber called in-loop)
            return
        try:
            future.result(self._timeout)
        except concurrent.futures.TimeoutError:
            log.warning("a window attempt was not %s durably within %.0f s; the window goes on", what, self._timeout)
        except Exception as exc:  # the partition went away, the loop closed: the window's outcome decides
            log.warning("a window attempt could not be %s: %s: %s", what, type(exc).__name__, exc)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
