#!/usr/bin/env python3
"""Publish an audio file to stream-app as one stream, paced like a live recorder.

Two clients, the same records on the wire (docs/streaming-api.md, "Writing a recorder"):

* ``--client stream-app`` (default): `stream_app.clients.publisher.ChunkPublisher`, which cuts the
  file into chunks, writes the CloudEvents headers, rides out broker outages within the
  ``[publisher]`` limits and waits until the broker acknowledged every chunk.
* ``--client confluent``: plain confluent-kafka and soundfile, the headers written by hand
  (`publish_with_confluent_kafka`): what a recorder in any language does.

Connection and security settings come from the stream-app configuration (``-c FILE``,
``STREAM_APP_CONFIG`` or ``STREAM_APP_KAFKA__*`` variables), so the same command works against the
plain local stack and the one ``stream-app local up --secure`` starts. From the repository root::

    .venv/bin/python examples/python/recorder.py stream_app/samples/jfk.flac --stream-id mic-7
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import soundfile
from confluent_kafka import KafkaError, Message, Producer

from stream_app.audio.exceptions import AudioFileError
from stream_app.clients.exceptions import PublishError
from stream_app.clients.kafka_config import producer_config, security_config
from stream_app.clients.publisher import ChunkPublisher, DeliveryLimits
from stream_app.config import ConfigError, load_settings


def publish_with_stream_app(
    config: dict[str, Any],
    topic: str,
    path: Path,
    stream_id: str,
    *,
    chunk_ms: float,
    realtime: bool,
    limits: DeliveryLimits,
    max_chunk_bytes: int,
) -> str:
    """Publish ``path`` with `ChunkPublisher`; return a one-line report.

    Raises:
        AudioFileError: the file cannot be read.
        ValueError: a chunk of ``chunk_ms`` would be larger than ``max_chunk_bytes``.
        PublishError: a chunk was not acknowledged within ``limits.delivery_timeout``.
    """
    with ChunkPublisher(config, topic, source="urn:example:python-recorder", limits=limits) as publisher:
        report = publisher.publish_file(
            path, stream_id, chunk_ms=chunk_ms, realtime=realtime, max_chunk_bytes=max_chunk_bytes
        )
    partitions = ",".join(str(p) for p in sorted(report.partitions))
    return (
        f"published stream {stream_id}: {report.chunks} chunks, {report.audio_seconds:.2f} s of audio "
        f"to {topic} (partition {partitions})"
    )


def publish_with_confluent_kafka(
    config: dict[str, Any], topic: str, path: Path, stream_id: str, *, chunk_ms: float, realtime: bool
) -> str:
    """Publish ``path`` with a plain confluent-kafka producer; return a one-line report.

    The file is sent at its own rate and channel count as s16le; the service converts it.

    Raises:
        PublishError: a chunk was not acknowledged.
    """
    samples, rate = soundfile.read(str(path), dtype="int16", always_2d=True)  # (frames, channels)
    channels = samples.shape[1]
    content_type = f"audio/pcm; encoding=s16le; rate={rate}; channels={channels}"
    step = max(1, round(rate * chunk_ms / 1000))  # frames per chunk
    producer = Producer(
        {
            **config,
            "acks": "all",  # acknowledged by every in-sync replica
            "enable.idempotence": True,  # the client's retries keep order and never duplicate
            "partitioner": "murmur2_random",  # as the Java client: every producer puts a stream on one partition
            "linger.ms": 5,
        }
    )
    failures: list[str] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(str(error))

    total = samples.shape[0]
    started = time.monotonic()
    count = 0
    for seq, first in enumerate(range(0, max(total, 1), step)):  # an empty file still sends its end of stream
        piece = samples[first : first + step]
        if realtime:  # a live recorder has a chunk only once its audio was captured
            time.sleep(max(0.0, started + (first + len(piece)) / rate - time.monotonic()))
        headers: list[tuple[str, str | bytes | None]] = [
            ("ce_specversion", b"1.0"),
            ("ce_id", str(uuid.uuid4()).encode()),
            ("ce_source", b"urn:example:python-recorder"),
            ("ce_type", b"dev.stream-app.audio.chunk"),
            ("ce_time", datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z").encode()),
            ("content-type", content_type.encode()),
            ("ce_seq", str(seq).encode()),
            ("ce_streamoffset", str(first).encode()),  # frames at the chunk's own rate
            ("ce_endofstream", b"true" if first + step >= total else b"false"),
        ]
        while True:
            try:
                producer.produce(
                    topic, key=stream_id.encode(), value=piece.astype("<i2").tobytes(), headers=headers,
                    on_delivery=delivered,
                )  # fmt: skip
                break
            except BufferError:  # the local queue is full (the broker is away): wait, never drop
                producer.poll(0.1)
        producer.poll(0)
        count += 1
    left = producer.flush(60)
    if left or failures:
        raise PublishError(f"stream {stream_id}: {left} chunk(s) unacknowledged, errors: {failures[:1]}")
    return f"published stream {stream_id}: {count} chunks, {total / rate:.2f} s of audio to {topic}"


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, publish, print what was sent; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="audio file (wav, flac, ogg, mp3)")
    parser.add_argument("--stream-id", required=True, help="the stream id (the record key)")
    parser.add_argument("--chunk-ms", type=float, default=100.0, help="audio per chunk in ms (default 100)")
    parser.add_argument("--fast", action="store_true", help="send as fast as possible, not at the audio's pace")
    parser.add_argument("--client", choices=("stream-app", "confluent"), default="stream-app")
    parser.add_argument("--topic", help="chunks topic (default: kafka.input_topic)")
    parser.add_argument("-c", "--config", help="stream-app TOML configuration (default: $STREAM_APP_CONFIG)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"recorder: {exc}", file=sys.stderr)
        return 2
    topic = args.topic or settings.kafka.input_topic
    try:
        if args.client == "confluent":
            raw = {"bootstrap.servers": settings.kafka.bootstrap_servers, **security_config(settings.kafka)}
            line = publish_with_confluent_kafka(
                raw, topic, args.file, args.stream_id, chunk_ms=args.chunk_ms, realtime=not args.fast
            )
        else:
            line = publish_with_stream_app(
                producer_config(settings.kafka),
                topic,
                args.file,
                args.stream_id,
                chunk_ms=args.chunk_ms,
                realtime=not args.fast,
                limits=DeliveryLimits.from_settings(settings.publisher),
                max_chunk_bytes=settings.streaming.max_chunk_bytes,
            )
    except (AudioFileError, soundfile.LibsndfileError, ValueError, PublishError) as exc:
        print(f"recorder: {exc}", file=sys.stderr)
        return 1
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
