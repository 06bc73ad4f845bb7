"""Where the worker's results go: transcript segments and dead letters, each awaited until acknowledged.

Sends that fail (the broker is restarting, a leader moved) are retried until they succeed: the
records they came from stay unacknowledged meanwhile, so nothing is lost and nothing is skipped. A
`DeliveryMonitor` turns readiness red and the broker gauge to 0 while writes fail or hang; a write
that keeps failing on a bug of ours instead turns liveness red (`RetryLoops`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError

from stream_app.metrics import worker_metrics as m
from stream_app.metrics.health import Health
from stream_app.wire.dlq import bare_dead_letter, without_value
from stream_app.wire.segment import TranscriptSegment
from stream_app.wire.segment_codec import encode_segment
from stream_app.worker.retry import Backoff, RateLimitedLog, retry_forever
from stream_app.worker.stalls import RetryLoops
from stream_app.worker.tables import EPOCH_HEADER

log = logging.getLogger(__name__)

TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError)  # the broker's or the client's size limit: final


def too_large(error: BaseException | None) -> bool:
    """Whether a send failed because the record is too large (faust wraps the client's error in its own)."""
    while error is not None:
        if isinstance(error, TOO_LARGE):
            return True
        error = error.__cause__
    return False


T = TypeVar("T")


@dataclass
class DeliveryMonitor:
    """Tracks the worker's writes to the broker: available while they succeed and none hangs for long."""

    health: Health
    slow_after: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _pending: dict[int, float] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _failing_since: float | None = None
    available: bool = True

    async def watch(self, write: Awaitable[T]) -> T:
        """Await one write to the broker, noting how long it takes and whether it fails."""
        token = next(self._ids)
        self._pending[token] = self.clock()
        try:
            result = await write
        except asyncio.CancelledError:
            raise
        except Exception:
            if self._failing_since is None:
                self._failing_since = self.clock()
            self._set(False)
            raise
        finally:
            self._pending.pop(token, None)
        self._failing_since = None
        self.check()
        return result

    def check(self) -> None:
        """Re-evaluate availability (the worker's timer calls this every second)."""
        now = self.clock()
        oldest = min(self._pending.values(), default=now)
        self._set(self._failing_since is None and now - oldest < self.slow_after)

    def oldest_pending(self) -> float:
        """Seconds the oldest unacknowledged write has waited (0 when none)."""
        return self.clock() - min(self._pending.values(), default=self.clock())

    def _set(self, ok: bool) -> None:
        if ok != self.available:
            log.warning("broker writes %s", "acknowledged again" if ok else "failing or not acknowledged: not ready")
        self.available = ok
        self.health.set_ready("broker", ok)
        m.BROKER_AVAILABLE.set(1 if ok else 0)


REPLICA_HEADER = "stream-app-replica"  # on every segment: the replica that published it, and its owner epoch
OWNER_HEADERS = (REPLICA_HEADER, EPOCH_HEADER)


class Outputs:
    """Publishes segments and dead letters through faust's topics, retrying until the broker has them."""

    def __init__(
        self, output_topic: Any, dlq_topic: Any, monitor: DeliveryMonitor, backoff: Backoff, replica: str = ""
    ) -> None:
        self.replica = replica
        self.output_topic = output_topic
        self.dlq_topic = dlq_topic
        self.monitor = monitor
        self.backoff = backoff
        self.loops = RetryLoops(monitor.health)  # a retry loop stuck on a bug of ours turns liveness red
        self._log = RateLimitedLog(log)

    async def publish(self, segments: Sequence[TranscriptSegment], epoch: int | None = None) -> float:
        """Send the segments in order and wait for every acknowledgement; returns the wall time it came.

        Each record names, in headers, the replica that published it and its owner ``epoch`` of the
        partition (`OWNER_HEADERS`): which owner a segment came from, for operators and `bench failover`.
        """
        if not segments:
            return time.time()
        records = [(s.stream_id.encode(), encode_segment(s)) for s in segments]
        headers = [(REPLICA_HEADER, self.replica.encode())] if self.replica else []
        if epoch is not None:
            headers.append((EPOCH_HEADER, str(epoch).encode()))

        async def send() -> None:
            pending = [await self.output_topic.send(key=key, value=value, headers=headers) for key, value in records]
            await self.monitor.watch(asyncio.gather(*pending))

        await retry_forever(send, what="publishing segments", backoff=self.backoff, log=self._log, watch=self.loops)
        for segment in segments:
            m.SEGMENTS.labels(kind="final" if segment.is_final else "interim").inc()
        return time.time()

    async def dead_letter(self, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        """Send one record to the dead-letter topic and wait until the broker has it.

        A record the topic refuses as too large (the refused chunk plus the ``dlq_*`` headers can pass the
        topic's limit) would be refused on every retry and hold its partition's acknowledgements for good:
        it goes once more without its value (its size in ``dlq_value_dropped``), then, if still too large
        (a writer's own headers), as the ``dlq_*`` headers alone (`bare_dead_letter`). Should even that be
        refused, the record is logged and acknowledged without a dead letter.
        """
        forms = [(key, value, headers)]
        if value:
            forms.append((key, None, without_value(value, headers)))
        forms.append(bare_dead_letter(key, value, headers))
        form = 0

        async def send() -> None:
            nonlocal form
            while True:
                k, v, h = forms[form]
                try:
                    fut = await self.dlq_topic.send(key=k, value=v, headers=h)
                    await self.monitor.watch(fut)
                    return
                except Exception as exc:
                    if not too_large(exc):
                        raise
                    size = len(k or b"") + len(v or b"") + sum(len(n) + len(r) for n, r in h)
                    if form + 1 == len(forms):
                        m.DEAD_LETTERS_REFUSED.inc()
                        log.error("the dead-letter topic refused even the bare dead letter (%d bytes, %s)", size, exc)
                        return
                    form += 1
                    log.error("the dead-letter topic refused a record of %d bytes (%s): sending less of it", size, exc)

        await retry_forever(send, what="dead-lettering a record", backoff=self.backoff, log=self._log, watch=self.loops)

    async def durable(self, write: Callable[[], Awaitable[T]], what: str) -> T:
        """Run a state write (changelog) until the broker acknowledges it."""

        async def attempt() -> T:
            return await self.monitor.watch(write())

        return await retry_forever(attempt, what=what, backoff=self.backoff, log=self._log, watch=self.loops)
