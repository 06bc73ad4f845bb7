"""Retrying what the infrastructure failed, without flooding the log or acknowledging past it.

A broker restart makes every send fail for some seconds. The worker keeps the work, waits with
exponential backoff, and tries again, for as long as it takes: a record is never acknowledged past
an infrastructure failure. The outage is logged once every few seconds with a count, not per retry.
A failure that is not the infrastructure's (a bug of ours: encoding a value fails the same way every
time) is retried too, but counted and logged as a bug, and reported to liveness (`RetryWatch`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from aiokafka.errors import KafkaError
from confluent_kafka import KafkaException
from faust.exceptions import ProducerSendError

from stream_app.metrics import worker_metrics as m
from stream_app.worker.exceptions import Fenced

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


# What the infrastructure fails with: faust wraps the producer's errors in ProducerSendError, aiokafka
# raises KafkaError (its timeouts included), sockets raise OSError (ConnectionError) or TimeoutError.
BROKER_ERRORS: tuple[type[BaseException], ...] = (ProducerSendError, KafkaError, KafkaException, OSError, TimeoutError)


def error_kind(error: BaseException) -> str:
    """``broker`` for the infrastructure's failures (retrying helps), ``bug`` for anything else (ours: it won't)."""
    return "broker" if isinstance(error, BROKER_ERRORS) else "bug"


class RetryWatch(Protocol):
    """Told about each retry loop's failures, so that a loop stuck on a bug of ours can be reported."""

    def failed(self, loop: object, what: str, error: BaseException, attempt: int) -> None:
        """``loop`` failed again (``attempt`` failures in a row)."""
        ...

    def ended(self, loop: object) -> None:
        """``loop`` succeeded or was cancelled."""
        ...


async def retry_forever(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    backoff: Backoff,
    log: RateLimitedLog,
    watch: RetryWatch | None = None,
) -> T:
    """Run ``operation`` until it succeeds; every failure is counted as ``processing_errors{kind}``.

    ``kind`` is the failure's `error_kind`: a broker outage is waited out; a bug of ours fails the same
    way every time, so the loop goes on (nothing may be acknowledged past it) but ``watch`` hears of it.
    Cancellation (the partition was revoked, the worker stops) and `Fenced` (the writer's ownership of
    the partition ended) end the loop at once.
    """
    attempt = 0
    loop = object()
    try:
        while True:
            try:
                return await operation()
            except (asyncio.CancelledError, Fenced):  # the partition is gone: nothing to retry for
                raise
            except Exception as exc:
                attempt += 1
                kind = error_kind(exc)
                m.PROCESSING_ERRORS.labels(kind=kind).inc()
                if watch is not None:
                    watch.failed(loop, what, exc, attempt)
                delay = backoff.delay(attempt)
                log.log(
                    logging.ERROR if kind == "bug" else logging.WARNING,
                    f"{kind}:{what}",
                    "%s failed (%s, %s: %s); retrying in %.1f s",
                    what,
                    "broker" if kind == "broker" else "a bug, not the broker",
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
    finally:
        if watch is not None:
            watch.ended(loop)
