"""Publish audio to the chunks topic as a recorder would: one stream, ordered chunks, confirmed delivery.

A broker outage costs latency, never chunks: unacknowledged chunks wait in librdkafka's bounded local
queue (``buffer_size`` / ``buffer_chunks``); when it is full the publish call blocks until deliveries
drain it (backpressure to the recorder, nothing dropped); the idempotent producer keeps a stream's
chunks in order and unduplicated across its retries. A chunk is reported undelivered only after its
``delivery_timeout`` (librdkafka's ``message.timeout.ms``), and every wait for acknowledgements
lasts at least that long, so the publisher never gives up while librdkafka would still deliver.

A producer that holds chunks and acknowledges none while the broker answers a fresh connection is
replaced, and its chunks are sent again by the new one (``stall_timeout``; the rule is in
`stream_app.clients.stall_watch`). A chunk the old producer did write arrives twice; the worker
keeps the first by its sequence number.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from stream_app.audio.files import NativeAudio, read_native_audio
from stream_app.audio.pcm import SAMPLE_BYTES
from stream_app.clients.chunking import PlannedChunk, plan_chunks, prepare_audio
from stream_app.clients.exceptions import PublishError
from stream_app.clients.stall_watch import StallWatch
from stream_app.config.settings import PublisherSettings
from stream_app.wire.chunk import ChunkFormat
from stream_app.wire.chunk_codec import encode_chunk
from stream_app.wire.stream_key import check_stream_key, new_stream_key

log = logging.getLogger(__name__)
librdkafka_log = logging.getLogger(f"{__name__}.librdkafka")

DEFAULT_SOURCE = "urn:stream-app:publisher"
FLUSH_GRACE_S = 5.0  # a wait for acknowledgements outlasts the delivery timeout by this much
OUTAGE_LOG_EVERY_S = 10.0  # while the broker is unreachable, say so at most this often
RECONNECT_BACKOFF_MAX_MS = 1000  # reconnect within a second of the broker's return (librdkafka: 10 s)
PROBE_TIMEOUT_S = 2.0  # a stalled producer's check: how long a fresh connection may take to answer

ProducerFactory = Callable[[dict[str, Any]], Producer]


@dataclass(frozen=True)
class DeliveryLimits:
    """How long and how much the publisher buffers through an outage (``[publisher]`` settings).

    The defaults are the settings' defaults: a 5-minute delivery timeout and a 64 MB buffer hold a
    60 s outage of 44.1 kHz stereo s16le audio (10.6 MB) with room to spare.
    """

    delivery_timeout: float = 300.0  # seconds
    buffer_bytes: int = 64 * 1024 * 1024
    buffer_chunks: int = 100_000
    stall_timeout: float = 15.0  # seconds without an acknowledgement, then again with the broker answering

    @classmethod
    def from_settings(cls, publisher: PublisherSettings) -> DeliveryLimits:
        """Take the limits of the validated ``[publisher]`` section."""
        return cls(publisher.delivery_timeout, publisher.buffer_size, publisher.buffer_chunks, publisher.stall_timeout)

    def producer_overrides(self) -> dict[str, Any]:
        """Return the librdkafka settings that enforce these limits."""
        return {
            "message.timeout.ms": max(1, round(self.delivery_timeout * 1000)),
            "queue.buffering.max.kbytes": max(1, self.buffer_bytes // 1024),
            "queue.buffering.max.messages": self.buffer_chunks,
            "reconnect.backoff.max.ms": RECONNECT_BACKOFF_MAX_MS,
        }


class AccessRefused(PublishError):
    """The broker refused the recorder's credentials or certificate: no wait for a delivery timeout."""


class DeliveryFailed(PublishError):
    """Chunks were not acknowledged within the delivery timeout; the publish call stopped there.

    Attributes:
        stream_id: the stream.
        undelivered: chunks handed to the producer that the broker never acknowledged.
        sent: chunks handed to the producer by the failed call (acknowledged or not).
        reason: the first delivery error librdkafka reported.
    """

    def __init__(self, stream_id: str, topic: str, undelivered: int, sent: int, reason: str, limit: float) -> None:
        self.stream_id = stream_id
        self.undelivered = undelivered
        self.sent = sent
        self.reason = reason
        super().__init__(
            f"stream {stream_id}: {undelivered} of {sent} chunks not delivered to {topic} "
            f"within the {limit:g} s delivery timeout ({reason}); publishing stopped"
        )


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
    acknowledged: int = 0  # chunks the broker acknowledged so far
    first_offset: int = -1  # the broker offset of the first acknowledged chunk
    last_offset: int = -1  # the broker offset of the last acknowledged chunk
    blocked_seconds: float = 0.0  # time the call waited for room in the full local buffer
    producers_replaced: int = 0  # stalled producers replaced during the call (their chunks sent again)


class _ThrottledLog:
    """librdkafka's log lines through `logging`, at most one per facility every ``every`` seconds.

    During an outage librdkafka reports every reconnect attempt (several a second); one line per
    facility and interval says the same, with the count of lines left out.
    """

    def __init__(self, every: float) -> None:
        self._every = every
        self._last: dict[str, float] = {}
        self._dropped: Counter[str] = Counter()

    def log(self, level: int, fmt: str, *args: object) -> None:
        """Take one line from librdkafka (``fmt % args``, the facility first)."""
        facility = str(args[0]) if args else fmt
        now = time.monotonic()
        last = self._last.get(facility)
        if last is not None and now - last < self._every:
            self._dropped[facility] += 1
            return
        self._last[facility] = now
        dropped = self._dropped.pop(facility, 0)
        librdkafka_log.log(level, fmt + "%s", *args, f" ({dropped} more like it since)" if dropped else "")


@dataclass
class _Deliveries:
    """Failures of one publish call, filled by librdkafka's callbacks (acknowledgements: its report)."""

    failures: list[str] = field(default_factory=list)


@dataclass
class _Held:
    """A chunk handed to a producer and not yet acknowledged: what it takes to send it again."""

    key: bytes
    value: bytes
    headers: list[tuple[str, str | bytes | None]]
    report: PublishReport
    deliveries: _Deliveries
    first_sent: float = 0.0  # monotonic time it was first handed to a producer: its delivery timeout counts from here

    def acknowledged(self, msg: Message) -> None:
        self.report.acknowledged += 1
        partition, offset = msg.partition(), msg.offset()
        if partition is not None:
            self.report.partitions.add(partition)
        if offset is not None:
            report = self.report
            report.last_offset = max(report.last_offset, offset)
            report.first_offset = offset if report.first_offset < 0 else min(report.first_offset, offset)


def _answers(producer: Producer, topic: str) -> bool:
    """Whether the broker answers this producer within ``PROBE_TIMEOUT_S`` with a leader for every partition."""
    try:
        metadata = producer.list_topics(topic, timeout=PROBE_TIMEOUT_S)
    except KafkaException:
        return False
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        return False
    return all(part.error is None and part.leader >= 0 for part in found.partitions.values())


class _Probe:
    """Asks, on a thread of its own, whether the broker answers a fresh producer (the pacing never waits)."""

    def __init__(self, factory: ProducerFactory, config: dict[str, Any], topic: str, producer: Producer | None) -> None:
        self.producer = producer
        self.answering = False
        self._done = threading.Event()
        threading.Thread(target=self._run, args=(factory, config, topic), name="publisher-probe", daemon=True).start()

    @property
    def done(self) -> bool:
        """Whether the answer is in (``answering``, with the fresh ``producer``)."""
        return self._done.is_set()

    def _run(self, factory: ProducerFactory, config: dict[str, Any], topic: str) -> None:
        try:
            if self.producer is None:
                self.producer = factory(config)
            self.answering = _answers(self.producer, topic)
        except Exception:  # a producer that cannot be made is a broker that does not answer (yet)
            log.exception("probing the broker for %s failed", topic)
        finally:
            self._done.set()


def _retire(producer: Producer) -> None:
    """Drop a replaced producer's chunks and release it; its reports are ignored (`ChunkPublisher._settle`)."""
    producer.purge(in_queue=True, in_flight=True)
    producer.poll(0)


class ChunkPublisher:
    """A confluent-kafka producer that writes one stream's chunks in order and waits for every ack.

    Idempotence is on and the key is the stream id, so a stream's chunks reach one partition in
    ``seq`` order even when the client retries. ``limits`` bound the local buffer and say how long
    a chunk may wait for the broker (see the module docstring). ``producer_factory`` makes each
    producer from its librdkafka settings (the first one, and any that replaces a stalled one).
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        topic: str,
        *,
        source: str = DEFAULT_SOURCE,
        limits: DeliveryLimits | None = None,
        producer_factory: ProducerFactory = Producer,
    ) -> None:
        self.topic = topic
        self.source = source
        self.limits = limits or DeliveryLimits()
        self.replacements = 0  # stalled producers replaced so far
        self._stream_keys: dict[str, str] = {}  # the key each stream's chunks carry (stream_app.wire.stream_key)
        self._last_outage_log = 0.0
        self._access = config.get("error_cb")  # names a refused password or certificate (kafka_errors)
        self._config: dict[str, Any] = {
            **config,
            **self.limits.producer_overrides(),
            "error_cb": self._on_error,
            "logger": _ThrottledLog(OUTAGE_LOG_EVERY_S),
        }
        self._factory = producer_factory
        self._producer = producer_factory(self._config)
        self._generation = 0  # which producer is current; a replaced one's purge reports are ignored
        self._held: dict[int, _Held] = {}  # handed over, unacknowledged, in the order sent
        self._next_id = 0
        self._watch = StallWatch(self.limits.stall_timeout)
        self._probe: _Probe | None = None  # a check, in flight, of whether the broker answers a fresh producer
        self._candidate: Producer | None = None  # the fresh producer of the last check, kept for the next

    @property
    def flush_timeout(self) -> float:
        """How long a wait for acknowledgements lasts: past the delivery timeout, so every chunk's fate is known."""
        return self.limits.delivery_timeout + FLUSH_GRACE_S

    def __enter__(self) -> ChunkPublisher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Deliver what is still queued (within the delivery timeout) and release the producer."""
        try:
            if getattr(self._access, "problem", None):  # refused: nothing queued will ever be delivered
                self._producer.purge()
                self._producer.flush(0)
                return
            self._await_acknowledgements()
            if self._held:
                log.warning("%d chunk(s) for %s still unacknowledged at close", len(self._held), self.topic)
        finally:
            self._probe = self._candidate = None

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
        on_progress: Callable[[PublishReport], None] | None = None,
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
            on_progress=on_progress,
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
        on_progress: Callable[[PublishReport], None] | None = None,
    ) -> PublishReport:
        """Publish in-memory audio (``(frames, channels)`` float32 at its rate) as one whole stream."""
        frames, fmt = prepare_audio(audio, source_format, encoding)
        return self.publish_frames(
            stream_id,
            frames,
            fmt,
            chunk_ms=chunk_ms,
            realtime=realtime,
            max_chunk_bytes=max_chunk_bytes,
            on_progress=on_progress,
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
        on_progress: Callable[[PublishReport], None] | None = None,
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
        return self.publish_chunks(stream_id, chunks, fmt, realtime=realtime, on_progress=on_progress)

    def stream_key(self, stream_id: str) -> str:
        """Return the key this publisher sends with ``stream_id``'s chunks (a new random one on first use).

        Only chunks with this key are taken for the stream: a recorder that restarts and goes on with the
        same stream id keeps the key (`use_stream_key`).
        """
        return self._stream_keys.setdefault(stream_id, new_stream_key())

    def use_stream_key(self, stream_id: str, key: str) -> None:
        """Send ``key`` with ``stream_id``'s chunks from now on (the key of a stream this recorder began earlier)."""
        check_stream_key(key)
        self._stream_keys[stream_id] = key

    def publish_chunks(
        self,
        stream_id: str,
        chunks: Iterable[PlannedChunk],
        fmt: ChunkFormat,
        *,
        realtime: bool = False,
        on_progress: Callable[[PublishReport], None] | None = None,
    ) -> PublishReport:
        """Encode and send planned chunks, pacing them at the audio's own speed when ``realtime``.

        The call blocks while the local buffer is full and returns once the broker acknowledged every
        chunk. ``chunks`` may be a generator: a live recorder's audio is read as it is sent.
        ``on_progress`` is called with the report after each chunk is handed to the producer.

        Raises:
            DeliveryFailed: a chunk was not acknowledged within the delivery timeout; the call stopped
                sending at that point and reports how many of the chunks it sent were lost.
        """
        report = PublishReport(stream_id=stream_id, topic=self.topic)
        replacements_before = self.replacements
        deliveries = _Deliveries()
        started = time.monotonic()
        first_start: float | None = None
        for chunk in chunks:
            self._raise_if_refused()
            if deliveries.failures:
                break  # the delivery timeout passed for an earlier chunk: the stream has a hole already
            if realtime:
                first_start = chunk.start if first_start is None else first_start
                self._wait_until(started + chunk.start - first_start + chunk.duration)
            key, value, headers = encode_chunk(
                stream_id,
                chunk.seq,
                chunk.offset,
                chunk.pcm,
                fmt,
                chunk.end_of_stream,
                self.source,
                stream_key=self.stream_key(stream_id),
            )
            held = _Held(key, value, list(headers), report, deliveries, time.monotonic())
            report.blocked_seconds += self._produce(held)
            report.chunks += 1
            report.payload_bytes += len(value)
            report.frames += len(value) // (SAMPLE_BYTES[fmt.encoding] * fmt.channels)
            report.audio_seconds += chunk.duration
            if on_progress is not None:
                on_progress(report)
        self._await_acknowledgements(report)
        report.producers_replaced = self.replacements - replacements_before
        undelivered = report.chunks - report.acknowledged
        if undelivered or deliveries.failures:
            reason = deliveries.failures[0] if deliveries.failures else "no acknowledgement"
            raise DeliveryFailed(
                stream_id, self.topic, undelivered, report.chunks, reason, self.limits.delivery_timeout
            )
        return report

    def _await_acknowledgements(self, report: PublishReport | None = None) -> None:
        """Serve deliveries until every held chunk (of ``report``'s call, or of any) is settled.

        A chunk is settled at the latest ``delivery_timeout`` after it was first handed over (`_expire`),
        whichever producer holds it then; the wait never lasts more than ``flush_timeout`` from now.
        """
        deadline = time.monotonic() + self.flush_timeout
        while any(report is None or held.report is report for held in self._held.values()):
            now = time.monotonic()
            if now >= deadline:
                return
            if len(self._producer):
                self._producer.flush(max(0.0, min(1.0, deadline - now)))
            else:  # held chunks that no producer has (a re-send cut short): they can only expire
                time.sleep(min(0.1, deadline - now))
            self._raise_if_refused()
            self._tend()

    def _produce(self, held: _Held) -> float:
        """Hand one new chunk to librdkafka, waiting while its buffer is full; returns the seconds waited."""
        waited = self._send_when_room(self._next_id, held, tend=True)
        self._held[self._next_id] = held
        self._next_id += 1
        self._watch.holding(time.monotonic())
        self._producer.poll(0)
        return waited

    def _send_when_room(self, ident: int, held: _Held, *, tend: bool) -> float:
        """`_send`, waiting while the local buffer is full (``tend``: check on a stall meanwhile); seconds waited."""
        blocked_since: float | None = None
        while True:
            try:
                self._send(ident, held)
                return 0.0 if blocked_since is None else time.monotonic() - blocked_since
            except BufferError:  # the local buffer is full: wait for deliveries (or expiries) to make room
                blocked_since = blocked_since or time.monotonic()
                self._producer.poll(0.1)
                self._raise_if_refused()
                if tend:
                    self._tend()

    def _send(self, ident: int, held: _Held) -> None:
        """Give ``held`` to the current producer; its delivery report settles ``ident`` (raises BufferError)."""
        generation = self._generation

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            self._settle(ident, generation, err, msg)

        self._producer.produce(
            self.topic, value=held.value, key=held.key, headers=held.headers, on_delivery=on_delivery
        )

    def _settle(self, ident: int, generation: int, err: KafkaError | None, msg: Message) -> None:
        """One delivery report of the current producer: an acknowledgement or a failure.

        A replaced producer's reports are ignored, acknowledgements too (they may come from its
        retiring thread): the current producer was given every chunk it held and reports on them.
        """
        held = self._held.get(ident)
        if held is None or generation != self._generation:
            return  # settled already, or a replaced producer's report
        if err is not None:
            del self._held[ident]
            held.deliveries.failures.append(str(err))
            if not self._held:
                self._watch.settled(time.monotonic(), holding=False)
            return
        del self._held[ident]
        held.acknowledged(msg)
        self._watch.settled(time.monotonic(), holding=bool(self._held))

    def _tend(self) -> None:
        """Expire overdue chunks; check on a stalled producer and replace it once the broker answers others."""
        now = time.monotonic()
        self._expire(now)
        if not self._watch.stalled(now):
            self._probe = self._candidate = None  # progress again: no fresh producer needed
            return
        if self._probe is not None:
            if not self._probe.done:
                return
            probe, self._probe = self._probe, None
            if probe.producer is not None and self._watch.probed(now, probe.answering):
                self._replace(probe.producer)
            else:
                self._candidate = probe.producer  # asked again at the next check
        elif self._watch.probe_due(now):
            self._probe = _Probe(self._factory, self._config, self.topic, self._candidate)
            self._candidate = None

    def _expire(self, now: float) -> None:
        """Fail held chunks whose delivery timeout, counted from their first hand-over, has passed.

        librdkafka counts it again on a producer that replaced another; the recorder's limit stands.
        """
        limit = self.limits.delivery_timeout
        overdue = []
        for ident, held in self._held.items():  # in the order first handed over
            if now - held.first_sent < limit:
                break
            overdue.append(ident)
        for ident in overdue:
            self._held.pop(ident).deliveries.failures.append(
                f"no acknowledgement; {self.replacements} stalled producer(s) replaced"
            )
        if overdue and not self._held:
            self._watch.settled(now, holding=False)

    def _replace(self, fresh: Producer) -> None:
        """Make ``fresh`` the producer and send it every held chunk, in the order they were first sent."""
        old, self._producer = self._producer, fresh
        self._generation += 1
        self.replacements += 1
        log.warning(
            "producer for %s acknowledged none of its %d held chunk(s) for %g s while the broker answers a "
            "fresh connection: replaced, sending them again (replacement %d)",
            self.topic,
            len(self._held),
            self._watch.limit,
            self.replacements,
        )
        threading.Thread(target=_retire, args=(old,), name="publisher-retire", daemon=True).start()
        del old
        try:
            for ident, held in list(self._held.items()):
                self._send_when_room(ident, held, tend=False)  # no replacement within a replacement
        finally:
            self._watch.replaced(time.monotonic(), holding=bool(self._held))

    def _raise_if_refused(self) -> None:
        problem = getattr(self._access, "problem", None)
        if problem:
            raise AccessRefused(f"{self.topic}: {problem}")

    def _on_error(self, error: KafkaError) -> None:
        """Say, at most every few seconds, that the broker is unreachable and chunks are being held."""
        if callable(self._access):
            self._access(error)  # records (and logs once) a refusal that waiting will not cure
        if error.fatal():
            log.error("producer for %s failed: %s", self.topic, error)
            return
        now = time.monotonic()
        if now - self._last_outage_log >= OUTAGE_LOG_EVERY_S:
            self._last_outage_log = now
            log.warning(
                "broker trouble (%s); %d chunk(s) held locally, kept up to %g s each",
                error,
                len(self._producer),
                self.limits.delivery_timeout,
            )

    def _wait_until(self, deadline: float) -> None:
        while (left := deadline - time.monotonic()) > 0:
            self._producer.poll(min(left, 0.05))
            self._tend()
