"""`stream-app publish FILE`: send an audio file to the chunks topic as one stream, like a recorder."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import uuid
from pathlib import Path
from typing import Any

from stream_app.audio.exceptions import AudioFileError
from stream_app.clients.chunking import SOURCE_FORMATS
from stream_app.clients.exceptions import KafkaAccessError, PublishError
from stream_app.clients.kafka_config import producer_config
from stream_app.clients.kafka_probe import check_kafka_access
from stream_app.clients.publisher import ChunkPublisher, DeliveryLimits
from stream_app.config import ConfigError, Settings
from stream_app.config.settings import build_section


def register(subparsers: Any) -> None:
    """Add the `publish` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "publish", help="publish an audio file as a stream of chunks"
    )
    parser.add_argument("file", type=Path, help="audio file (wav, flac, mp3, ogg, m4a, ...)")
    parser.add_argument("--stream-id", help="stream id (the record key); default: file name plus a random suffix")
    parser.add_argument("--chunk-ms", type=float, default=100.0, help="audio per chunk in ms (default 100)")
    parser.add_argument("--realtime", action="store_true", help="pace chunks at the audio's own speed")
    parser.add_argument(
        "--source-format",
        choices=SOURCE_FORMATS,
        default="native",
        help="native: the file's rate and channels (the service converts); s16le16k: 16 kHz mono s16le",
    )
    parser.add_argument("--encoding", choices=("s16le", "f32le"), default="s16le", help="sample encoding for native")
    parser.add_argument("--topic", help="chunks topic (default: kafka.input_topic)")
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="give up at once when no broker answers within S seconds (default 10); an outage after that "
        "is ridden out within --delivery-timeout",
    )
    outage = parser.add_argument_group("broker outages (override the [publisher] settings)")
    outage.add_argument(
        "--delivery-timeout",
        metavar="DURATION",
        help="report a chunk undelivered only after this long without an acknowledgement (publisher.delivery_timeout)",
    )
    outage.add_argument(
        "--buffer-size",
        metavar="SIZE",
        help="unacknowledged chunks held before publishing blocks (publisher.buffer_size)",
    )
    outage.add_argument(
        "--buffer-chunks", type=int, metavar="N", help="the same bound in chunks (publisher.buffer_chunks)"
    )
    parser.set_defaults(handler=_publish)


def delivery_limits(args: argparse.Namespace, settings: Settings) -> DeliveryLimits:
    """Return the ``[publisher]`` limits with the command line's overrides, validated like the settings file.

    Raises:
        ConfigError: an override is not a valid duration, size or count.
    """
    overrides = {
        key: value
        for key, value in (
            ("delivery_timeout", args.delivery_timeout),
            ("buffer_size", args.buffer_size),
            ("buffer_chunks", args.buffer_chunks),
        )
        if value is not None
    }
    current = dataclasses.asdict(settings.publisher)
    return DeliveryLimits.from_settings(build_section("publisher", {**current, **overrides}))


def _publish(args: argparse.Namespace, settings: Settings) -> int:
    stream_id = args.stream_id or f"{args.file.stem}-{uuid.uuid4().hex[:8]}"
    topic = args.topic or settings.kafka.input_topic
    try:
        limits = delivery_limits(args, settings)
    except ConfigError as exc:
        print(f"stream-app publish: {exc}", file=sys.stderr)
        return 2
    try:
        check_kafka_access(settings.kafka, timeout=args.connect_timeout)
    except KafkaAccessError as exc:
        print(f"stream-app publish: {exc}", file=sys.stderr)
        return 1
    try:
        with ChunkPublisher(producer_config(settings.kafka), topic, limits=limits) as publisher:
            report = publisher.publish_file(
                args.file,
                stream_id,
                chunk_ms=args.chunk_ms,
                source_format=args.source_format,
                encoding=args.encoding,
                realtime=args.realtime,
                max_chunk_bytes=settings.streaming.max_chunk_bytes,
            )
    except (AudioFileError, ValueError, PublishError) as exc:
        print(f"stream-app publish: {exc}", file=sys.stderr)
        return 1
    partitions = ",".join(str(p) for p in sorted(report.partitions))
    print(
        f"published stream {report.stream_id}: {report.chunks} chunks, {report.audio_seconds:.2f} s of audio, "
        f"{report.payload_bytes} bytes to {report.topic} (partition {partitions})"
    )
    return 0
