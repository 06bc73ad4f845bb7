"""`stream-app publish FILE`: send an audio file to the chunks topic as one stream, like a recorder."""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path
from typing import Any

from stream_app.audio.exceptions import AudioFileError
from stream_app.clients.chunking import SOURCE_FORMATS
from stream_app.clients.exceptions import PublishError
from stream_app.clients.kafka_config import producer_config
from stream_app.clients.publisher import ChunkPublisher
from stream_app.config import Settings


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
    parser.set_defaults(handler=_publish)


def _publish(args: argparse.Namespace, settings: Settings) -> int:
    stream_id = args.stream_id or f"{args.file.stem}-{uuid.uuid4().hex[:8]}"
    topic = args.topic or settings.kafka.input_topic
    try:
        with ChunkPublisher(producer_config(settings.kafka), topic) as publisher:
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
