"""Retrying what the infrastructure failed, without flooding the log or acknowledging past it.

A broker restart makes every send fail for some seconds. The worker keeps the work, waits with
exponential backoff, and tries again, for as long as it takes: a record is never acknowledged past
an infrastructure failure. The outage is logged once every few seconds with a count, not per retry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from stream_app.metrics import worker_metrics as m

T = TypeVar("T")


@dataclass
class RateLimitedLog:
    """Log a recurring condition at most once per ``every`` seconds, saying how often it happened meanwhile."""

    logger: logging.Logger
    every: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _last: dict[str, float] = field(default_factory=dict)
    _suppressed: dict[str, int] = field(default_factory=dict)

    def log(self, level: int, key: str, message: str, *args: object) -> None:
        """Log ``message`` for ``key`` now, or count it if that key was logged less than ``every`` s ago."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.every:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        suppressed = self._suppressed.pop(key, 0)
        self._last[key] = now
        if suppressed:
            message += f" ({suppressed} more like this in the last {now - last if last else 0:.0f} s)"
        self.logger.log(level, message, *args)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``first`` seconds, doubling, at most ``maximum``."""

    first: float = 0.1
    maximum: float = 5.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1 for the first retry)."""
        return float(min(self.maximum, self.first * 2 ** max(0, attempt - 1)))


async def retry_forever(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    kind: str,
    backoff: Backoff,
    log: RateLimitedLog,
    on_failure: Callable[[BaseException], None] | None = None,
    on_success: Callable[[], None] | None = None,
) -> T:
    """Run ``operation`` until it succeeds; every failure is counted as ``processing_errors{kind}``.

    Cancellation (the partition was revoked, the worker stops) ends the loop at once.
    """
    attempt = 0
    while True:
        try:
            result = await operation()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            attempt += 1
            m.PROCESSING_ERRORS.labels(kind=kind).inc()
            if on_failure is not None:
                on_failure(exc)
            delay = backoff.delay(attempt)
            log.log(
                logging.WARNING,
                f"{kind}:{what}",
                "%s failed (%s: %s); retrying in %.1f s",
                what,
                type(exc).__name__,
                exc,
                delay,
            )
            await asyncio.sleep(delay)
            continue
        if on_success is not None:
            on_success()
        return result
