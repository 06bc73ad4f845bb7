"""Publish audio to the chunks topic as a recorder would: one stream, ordered chunks, confirmed delivery."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
from confluent_kafka import KafkaError, Message, Producer

from stream_app.audio.files import NativeAudio, read_native_audio
from stream_app.audio.pcm import SAMPLE_BYTES
from stream_app.clients.chunking import PlannedChunk, plan_chunks, prepare_audio
from stream_app.clients.exceptions import PublishError
from stream_app.wire.chunk import ChunkFormat
from stream_app.wire.chunk_codec import encode_chunk

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "urn:stream-app:publisher"


@dataclass
class PublishReport:
    """What one publish call sent and where it landed."""

    stream_id: str
    topic: str
    chunks: int = 0
    frames: int = 0
    payload_bytes: int = 0
    audio_seconds: float = 0.0
    partitions: set[int] = field(default_factory=set)
    last_offset: int = -1  # the broker offset of the last acknowledged chunk


class ChunkPublisher:
    """A confluent-kafka producer that writes one stream's chunks in order and waits for every ack.

    Idempotence is on and the key is the stream id, so a stream's chunks reach one partition in
    ``seq`` order even when the client retries.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        topic: str,
        *,
        source: str = DEFAULT_SOURCE,
        flush_timeout: float = 30.0,
    ) -> None:
        self.topic = topic
        self.source = source
        self.flush_timeout = flush_timeout
        self._producer = Producer(dict(config))
        self._errors: list[str] = []

    def __enter__(self) -> ChunkPublisher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Deliver what is still queued (best effort) and release the producer."""
        self._producer.flush(self.flush_timeout)

    def publish_file(
        self,
        path: str | Path,
        stream_id: str,
        *,
        chunk_ms: float = 100.0,
        source_format: str = "native",
        encoding: str = "s16le",
        realtime: bool = False,
        max_chunk_bytes: int | None = None,
    ) -> PublishReport:
        """Publish a whole audio file as one stream, ending it with end of stream.

        Raises:
            AudioFileError: the file cannot be read.
            ValueError: the chunk layout is impossible (see :func:`prepare_audio`).
            PublishError: a chunk was not acknowledged.
        """
        return self.publish_audio(
            read_native_audio(path),
            stream_id,
            chunk_ms=chunk_ms,
            source_format=source_format,
            encoding=encoding,
            realtime=realtime,
            max_chunk_bytes=max_chunk_bytes,
        )

    def publish_audio(
        self,
        audio: NativeAudio,
        stream_id: str,
        *,
        chunk_ms: float = 100.0,
        source_format: str = "native",
        encoding: str = "s16le",
        realtime: bool = False,
        max_chunk_bytes: int | None = None,
    ) -> PublishReport:
        """Publish in-memory audio (``(frames, channels)`` float32 at its rate) as one whole stream."""
        frames, fmt = prepare_audio(audio, source_format, encoding)
        return self.publish_frames(
            stream_id, frames, fmt, chunk_ms=chunk_ms, realtime=realtime, max_chunk_bytes=max_chunk_bytes
        )

    def publish_frames(
        self,
        stream_id: str,
        frames: npt.NDArray[np.float32],
        fmt: ChunkFormat,
        *,
        chunk_ms: float = 100.0,
        realtime: bool = False,
        start_seq: int = 0,
        start_offset: int = 0,
        end_of_stream: bool = True,
        max_chunk_bytes: int | None = None,
    ) -> PublishReport:
        """Publish ``(frames, channels)`` audio in ``fmt`` from ``start_seq``; a live recorder calls this repeatedly."""
        chunks = plan_chunks(
            frames,
            fmt,
            chunk_ms,
            start_seq=start_seq,
            start_offset=start_offset,
            end_of_stream=end_of_stream,
            max_bytes=max_chunk_bytes,
        )
        return self.publish_chunks(stream_id, chunks, fmt, realtime=realtime)

    def publish_chunks(
        self, stream_id: str, chunks: Iterable[PlannedChunk], fmt: ChunkFormat, *, realtime: bool = False
    ) -> PublishReport:
        """Encode and send planned chunks, pacing them at the audio's own speed when ``realtime``.

        Raises:
            PublishError: the broker did not acknowledge every chunk within ``flush_timeout``.
        """
        report = PublishReport(stream_id=stream_id, topic=self.topic)
        self._errors = []
        started = time.monotonic()
        first_start: float | None = None
        for chunk in chunks:
            if realtime:
                first_start = chunk.start if first_start is None else first_start
                self._wait_until(started + chunk.start - first_start + chunk.duration)
            key, value, headers = encode_chunk(
                stream_id, chunk.seq, chunk.offset, chunk.pcm, fmt, chunk.end_of_stream, self.source
            )
            self._produce(key, value, headers, report)
            report.chunks += 1
            report.payload_bytes += len(value)
            report.frames += len(value) // (SAMPLE_BYTES[fmt.encoding] * fmt.channels)
            report.audio_seconds += chunk.duration
        remaining = self._producer.flush(self.flush_timeout)
        if remaining or self._errors:
            detail = "; ".join(self._errors[:3]) or "no acknowledgement"
            raise PublishError(
                f"stream {stream_id}: {len(self._errors) + remaining} of {report.chunks} chunks not delivered "
                f"to {self.topic} ({detail})"
            )
        return report

    def _produce(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]], report: PublishReport) -> None:
        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                self._errors.append(str(err))
                return
            partition, offset = msg.partition(), msg.offset()
            if partition is not None:
                report.partitions.add(partition)
            if offset is not None:
                report.last_offset = max(report.last_offset, offset)

        wire_headers: list[tuple[str, str | bytes | None]] = list(headers)
        while True:
            try:
                self._producer.produce(self.topic, value=value, key=key, headers=wire_headers, on_delivery=on_delivery)
                break
            except BufferError:
                self._producer.poll(0.1)  # the local queue is full: let deliveries drain it
        self._producer.poll(0)

    def _wait_until(self, deadline: float) -> None:
        while (left := deadline - time.monotonic()) > 0:
            self._producer.poll(min(left, 0.05))
