"""A new owner's catch-up: what its predecessor wrote to a changelog between the restore and the fence.

A partition's new owner restores its tables from the changelogs up to the ends faust read as the
assignment arrived, then writes its fence (`stream_app.worker.fencing`). The previous owner may still
store a stream's header in between: it steps its streams until its own assignment callback closes the
partition. Such a record precedes the fence, so every later restore takes it as current, but the new
owner never read it and would go on from the older header, publishing again segments its predecessor
already published with other words.

So a take-over records where its local state stops (`TakeOver.start`, held there while the fence is
written so the fence's acknowledgement does not claim the records in between), learns the fence's own
offset from its acknowledgement (`TakeOver.end`), and reads the changelog between the two before it
loads any stream. A record found there is applied as a restore would apply it (late writes of owners
replaced earlier are still fenced); a fence found there, of the epoch taken or above, means another
replica took the partition over in between: the take-over is repeated with a higher epoch.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from confluent_kafka import Consumer, KafkaException, TopicPartition

from stream_app.clients.kafka_config import consumer_config
from stream_app.config.settings import KafkaSettings
from stream_app.wire.headers import headers_to_list

READ_TIMEOUT = 30.0  # seconds for one range; the take-over retries a failed read
READ_THREADS = 4  # ranges read at once (a replica taking several partitions over reads two per partition)


@dataclass(frozen=True)
class TakeOver:
    """One changelog partition at a take-over: the offsets between the local state's end and the fence."""

    start: int  # the first offset the local state has not applied
    end: int  # the fence record's offset (-1 until it is acknowledged)
    fence_before: bytes | None  # the fence value local state held before this take-over's
    fence: bytes | None = None  # this take-over's fence value (None until it is acknowledged)

    @property
    def gap(self) -> bool:
        """Whether the changelog may hold records between the local state and the fence."""
        return self.end > self.start


@dataclass(frozen=True)
class ChangelogRecord:
    """One record read back from a changelog partition."""

    offset: int
    key: bytes
    value: bytes | None  # None: a tombstone
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class ChangelogReader(Protocol):
    """Reads a range of offsets of one changelog partition."""

    async def read(self, topic: str, partition: int, start: int, end: int) -> Sequence[ChangelogRecord]:
        """Return the records at offsets ``start <= offset < end``, in order.

        Raises:
            ConnectionError: the range could not be read (the caller retries).
        """
        ...


class KafkaChangelogReader:
    """`ChangelogReader` over a short-lived confluent-kafka consumer (assigned, never in a group, never committing).

    Reads run in threads of their own (never the pool the model calls use), and a cancelled read
    stops at its next poll.
    """

    def __init__(self, kafka: KafkaSettings, timeout: float = READ_TIMEOUT) -> None:
        self._config = consumer_config(kafka)
        self._timeout = timeout
        self._threads = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="changelog-catch-up")

    async def read(self, topic: str, partition: int, start: int, end: int) -> Sequence[ChangelogRecord]:
        """Read ``[start, end)`` (the consumer's calls block, so in a thread).

        Raises:
            ConnectionError: not every offset up to ``end`` was seen within the timeout.
        """
        if end <= start:
            return []
        stop = threading.Event()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._threads, self._read, topic, partition, start, end, stop)
        finally:
            stop.set()

    def _read(self, topic: str, partition: int, start: int, end: int, stop: threading.Event) -> list[ChangelogRecord]:
        consumer = Consumer(self._config)
        deadline = time.monotonic() + self._timeout
        found: list[ChangelogRecord] = []
        try:
            consumer.assign([TopicPartition(topic, partition, start)])
            while time.monotonic() < deadline and not stop.is_set():
                message = consumer.poll(0.2)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    # the end of what is visible: the fence was acknowledged by every replica, so the
                    # records up to it become readable; anything else is worth another poll until the deadline
                    if error.fatal():
                        raise ConnectionError(f"reading {topic}[{partition}]: {error}")
                    continue
                offset = message.offset()
                if offset is None:
                    continue
                if offset >= end:  # records between the last one found and the fence were compacted away
                    return found
                key = message.key()
                found.append(ChangelogRecord(offset, key if isinstance(key, bytes) else b"", message.value(),
                                             headers_to_list(message.headers())))  # fmt: skip
                if offset >= end - 1:
                    return found
        except KafkaException as exc:
            raise ConnectionError(f"reading {topic}[{partition}] from {start}: {exc}") from exc
        finally:
            consumer.close()
        raise ConnectionError(f"{topic}[{partition}] not read from {start} to {end} in {self._timeout:.0f} s")
