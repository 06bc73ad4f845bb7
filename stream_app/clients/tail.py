"""Read the transcripts topic: every segment, or one stream's, from the beginning or from now on."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from stream_app.clients.exceptions import TailError
from stream_app.clients.kafka_errors import unreachable_message
from stream_app.clients.transcript import FinalTranscript, TranscriptAssembler
from stream_app.wire.exceptions import SegmentDecodeError
from stream_app.wire.segment import TranscriptSegment
from stream_app.wire.segment_codec import decode_segment

log = logging.getLogger(__name__)

METADATA_WAIT_S = 5.0  # how long the first metadata request may wait for a broker


class TranscriptTail:
    """A consumer with manual assignment of every partition of the transcripts topic.

    It joins no group rebalance and commits nothing, so any number of tails can run beside the
    workers and beside each other. Records that are not valid segments are logged and skipped.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        topic: str,
        *,
        stream_id: str | None = None,
        from_beginning: bool = True,
        topic_wait: float = 30.0,
    ) -> None:
        self.topic = topic
        self.stream_id = stream_id
        self.skipped = 0
        self._key = stream_id.encode("utf-8") if stream_id is not None else None
        self._config = dict(config)
        self._consumer = Consumer(self._config)
        try:
            self._assign(from_beginning, topic_wait)
        except BaseException:
            self._consumer.close()
            raise

    def __enter__(self) -> TranscriptTail:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Leave the broker."""
        self._consumer.close()

    def segments(self, timeout: float | None = None) -> Iterator[TranscriptSegment]:
        """Yield segments as they arrive, for at most ``timeout`` seconds (forever when None)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while deadline is None or (left := deadline - time.monotonic()) > 0:
            wait = 0.5 if deadline is None else min(0.5, left)
            msg = self._consumer.poll(wait)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.fatal():
                    raise TailError(f"consumer failed on {self.topic}: {err}")
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("transient consumer error on %s: %s", self.topic, err)
                continue
            if self._key is not None and msg.key() != self._key:
                continue
            value = msg.value()
            try:
                yield decode_segment(value if value is not None else b"")
            except SegmentDecodeError as exc:
                self.skipped += 1
                log.warning("skipping %s[%d]@%d: %s", msg.topic(), msg.partition(), msg.offset(), exc)

    def _assign(self, from_beginning: bool, topic_wait: float) -> None:
        deadline = time.monotonic() + topic_wait
        while True:
            try:
                metadata = self._consumer.list_topics(self.topic, timeout=METADATA_WAIT_S)
            except KafkaException as exc:
                raise TailError(unreachable_message(self._config, METADATA_WAIT_S)) from exc
            topic = metadata.topics.get(self.topic)
            if topic is not None and topic.error is None and topic.partitions:
                break
            if time.monotonic() >= deadline:
                raise TailError(f"topic {self.topic} does not exist (waited {topic_wait:.0f} s)")
            time.sleep(0.5)
        partitions = []
        for number in sorted(topic.partitions):
            if from_beginning:
                partitions.append(TopicPartition(self.topic, number, OFFSET_BEGINNING))
            else:
                # resolve "the end" now, so segments produced before the first fetch are not skipped
                _, high = self._consumer.get_watermark_offsets(TopicPartition(self.topic, number), timeout=10.0)
                partitions.append(TopicPartition(self.topic, number, high))
        self._consumer.assign(partitions)


def collect_final_transcript(
    config: Mapping[str, Any], topic: str, stream_id: str, *, timeout: float, from_beginning: bool = True
) -> FinalTranscript:
    """Read one stream's segments until its end-of-stream segment arrives or ``timeout`` passes.

    Returns:
        The final transcript; ``complete`` says whether the end of the stream was seen.
    """
    assembler = TranscriptAssembler(stream_id)
    deadline = time.monotonic() + timeout
    with TranscriptTail(config, topic, stream_id=stream_id, from_beginning=from_beginning, topic_wait=timeout) as tail:
        for segment in tail.segments(timeout=max(0.0, deadline - time.monotonic())):
            assembler.add(segment)
            if assembler.ended:
                break
    return assembler.result()
