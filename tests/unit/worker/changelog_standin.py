"""A faust app whose tables are real (RocksDB files in a folder) and whose broker is the test.

`HeldProducer` takes faust's place of the Kafka producer: each changelog send waits until the test
acknowledges it (as the broker would, with an offset) or refuses it, and completes it as faust's
producer does (the future's result, then the send's callback).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust
from faust.types import TP
from faust.types.tuples import FutureMessage, RecordMetadata


class HeldProducer:
    """Keeps every send until the test acknowledges or refuses it."""

    def __init__(self) -> None:
        self.sent: list[FutureMessage] = []
        self.offsets: dict[str, int] = {}

    def send_soon(self, fut: FutureMessage) -> None:
        self.sent.append(fut)

    def waiting(self) -> list[FutureMessage]:
        return [fut for fut in self.sent if not fut.done()]

    def ack(self, fut: FutureMessage) -> int:
        """Acknowledge one send; returns the offset it got."""
        topic = fut.message.channel.get_topic_name()
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        partition = fut.message.partition
        fut.set_result(RecordMetadata(topic, partition, TP(topic, partition), offset))
        if fut.message.callback is not None:
            fut.message.callback(fut)
        return offset

    def ack_all(self) -> None:
        for fut in self.waiting():
            self.ack(fut)

    def refuse(self, fut: FutureMessage, error: Exception) -> None:
        fut.set_exception(error)


def changelog_app(datadir: Path, table_class: Any = None) -> tuple[faust.App, HeldProducer]:
    """A faust app that is never started, over ``datadir``, with a `HeldProducer`."""
    options: dict[str, Any] = {} if table_class is None else {"Table": table_class}
    app = faust.App(
        f"t-{datadir.name}", broker="kafka://127.0.0.1:1", store="rocksdb://", datadir=str(datadir), **options
    )
    producer = HeldProducer()
    app.producer = producer
    return app, producer
