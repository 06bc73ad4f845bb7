"""What the workers did with one published stream: its dead letters by reason, counted while it is sent.

A recorder learns of a refused chunk only from the dead-letter topic: the broker acknowledges every
chunk, and the worker decides later (``bad_stream_id``, ``after_end``, ...). `RefusalWatch` follows the
dead-letter topic from its end, in a thread of its own, and keeps the records of one stream whose
source offsets are those this publisher sent, each counted once (a worker replay dead-letters again).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from stream_app.wire.dlq import H_REASON, H_SOURCE_OFFSET, H_SOURCE_PARTITION
from stream_app.wire.exceptions import REJECTION_REASONS, ChunkRejected
from stream_app.wire.headers import headers_to_dict

POLL_S = 0.25

# What to do about the chunk refusals a recorder can cause, by reason.
ADVICE = {
    "after_end": "the stream id ended recently (within streaming.ended_retention, 5 min by default); "
    "publish under a new stream id",
    "late_chunk": "chunks arrived after the worker gave up waiting for them (more than streaming.max_reorder_chunks "
    "or streaming.max_held behind): the recorder's retries or its network hold chunks too long",
    "bad_stream_id": "the stream id breaks the codec's rules (printable, no space at an end, at most 256 characters)",
    "oversized": "chunks are over streaming.max_chunk_bytes: a shorter --chunk-ms",
    "unsupported_rate": "the rate is outside 8-192 kHz: --source-format s16le16k",
}


@dataclass
class Refusals:
    """Dead letters of one stream: chunks refused (by reason) and windows given up (by reason)."""

    chunks: Counter[str] = field(default_factory=Counter)
    windows: Counter[str] = field(default_factory=Counter)

    @property
    def refused_chunks(self) -> int:
        """How many of the stream's chunks the workers refused."""
        return sum(self.chunks.values())

    def summary(self) -> str:
        """``after_end: 66, bad_stream_id: 2`` (chunks), then the windows given up, if any."""
        parts = [f"{reason}: {count}" for reason, count in sorted(self.chunks.items())]
        parts += [f"{reason}: {count} window(s)" for reason, count in sorted(self.windows.items())]
        return ", ".join(parts)

    def advice(self) -> list[str]:
        """One line of what to do per chunk refusal reason that has advice."""
        return [f"{reason}: {ADVICE[reason]}" for reason in sorted(self.chunks) if reason in ADVICE]


class RefusalWatch:
    """Follow the dead-letter topic for one stream's records, from the end offsets found at the start."""

    def __init__(self, config: Mapping[str, Any], topic: str, stream_id: str) -> None:
        self.topic = topic
        self._key = stream_id.encode("utf-8")
        self._lock = threading.Lock()
        self._seen: set[tuple[str, ...]] = set()
        self._found: list[tuple[str, int | None, int | None]] = []  # reason, source partition, source offset
        self._stop = threading.Event()
        self._settle_requests: list[threading.Event] = []
        self._consumer = Consumer({**config, "enable.partition.eof": False})
        try:
            self._ends = self._assign()
        except BaseException:
            self._consumer.close()
            raise
        self._thread = threading.Thread(target=self._follow, name="refusal-watch", daemon=True)
        self._thread.start()

    def __enter__(self) -> RefusalWatch:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop following the topic."""
        self._stop.set()
        self._thread.join(10.0)
        self._consumer.close()

    def refusals(self, sent: Mapping[int, tuple[int, int]]) -> Refusals:
        """Count what was seen so far for the chunks ``sent``: partition -> (first offset, last offset)."""
        out = Refusals()
        with self._lock:
            found = list(self._found)
        for reason, partition, offset in found:
            if reason not in REJECTION_REASONS:
                out.windows[reason] += 1  # a window given up (inference_failed, poison_window)
            elif partition is None or offset is None or partition not in sent:
                continue
            elif sent[partition][0] <= offset <= sent[partition][1]:
                out.chunks[reason] += 1
        return out

    def _assign(self) -> dict[int, int]:
        try:
            meta = self._consumer.list_topics(self.topic, timeout=10.0).topics.get(self.topic)
        except KafkaException as exc:
            raise RuntimeError(f"dead-letter topic {self.topic}: {exc}") from exc
        if meta is None or meta.error is not None or not meta.partitions:
            raise RuntimeError(f"dead-letter topic {self.topic} does not exist (stream-app local topics creates it)")
        ends = {}
        for number in sorted(meta.partitions):
            ends[number] = self._consumer.get_watermark_offsets(TopicPartition(self.topic, number), timeout=10.0)[1]
        self._consumer.assign([TopicPartition(self.topic, p, end) for p, end in ends.items()])
        return ends

    def settle(self, timeout: float) -> bool:
        """Wait until every dead letter already on the topic has been read; False when ``timeout`` passed first."""
        request = threading.Event()
        with self._lock:
            self._settle_requests.append(request)
        return request.wait(timeout)

    def _follow(self) -> None:
        caught_up: list[threading.Event] = []
        highs: dict[int, int] = {}
        while not self._stop.is_set():
            with self._lock:
                fresh, self._settle_requests = self._settle_requests, []
            if fresh:
                caught_up += fresh
                highs = self._highs()  # every record on the topic now must be read before they are answered
            message = self._consumer.poll(POLL_S)
            if message is not None and message.error() is None and message.key() == self._key:
                self._take(message)
            if caught_up and self._reached(highs):
                for request in caught_up:
                    request.set()
                caught_up = []

    def _highs(self) -> dict[int, int]:
        try:
            return {
                p: self._consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=5.0)[1]
                for p in self._ends
            }
        except KafkaException:
            return {}

    def _reached(self, highs: Mapping[int, int]) -> bool:
        if not highs:
            return False
        positions = self._consumer.position([TopicPartition(self.topic, p) for p in highs])
        at = {tp.partition: (tp.offset if tp.offset >= 0 else self._ends[tp.partition]) for tp in positions}
        return all(at.get(p, -1) >= high for p, high in highs.items())

    def _take(self, message: Message) -> None:
        try:  # only the worker's own dlq_* headers: the refused record's may be what got it refused
            headers = headers_to_dict(message.headers() or [], only=lambda name: name.startswith("dlq_"))
        except ChunkRejected:
            headers = {}
        reason = headers.get(H_REASON, "") or "?"
        identity = tuple(sorted(f"{k}={v}" for k, v in headers.items() if k != "dlq_detail"))
        partition = _number(headers.get(H_SOURCE_PARTITION))
        offset = _number(headers.get(H_SOURCE_OFFSET))
        with self._lock:
            if identity in self._seen:
                return  # the same record dead-lettered again by a replay
            self._seen.add(identity)
            self._found.append((reason, partition, offset))


def _number(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None
