"""The tasks of one partition: started for its streams, cancelled together when it is revoked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class PartitionScope:
    """A task group per partition; `close` cancels them (the partition was revoked) and refuses new ones."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closed = False

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any] | None:
        """Start ``coro`` as a task of this partition (``None``, and the coroutine closed, once closed)."""
        if self.closed:
            coro.close()
            return None
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("task %s of partition %d failed", task.get_name(), self.partition, exc_info=exc)

    def close(self) -> None:
        """Cancel every task of the partition; later `spawn` calls start nothing."""
        self.closed = True
        for task in list(self._tasks):
            task.cancel()

    @property
    def task_count(self) -> int:
        """Tasks still running."""
        return len(self._tasks)
