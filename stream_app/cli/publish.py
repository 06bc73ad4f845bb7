"""`stream-app publish FILE`: send an audio file to the chunks topic as one stream, like a recorder."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from stream_app.audio.exceptions import AudioFileError
from stream_app.audio.files import read_native_audio
from stream_app.audio.live_input import open_live_input
from stream_app.cli.live_interrupt import LiveInterrupt
from stream_app.cli.publish_outcome import ProgressLine, report_outcome
from stream_app.clients.chunking import SOURCE_FORMATS, chunk_pcm_stream, native_layout_problem
from stream_app.clients.exceptions import KafkaAccessError, PublishError
from stream_app.clients.kafka_config import consumer_config, producer_config
from stream_app.clients.kafka_probe import check_kafka_access
from stream_app.clients.publisher import ChunkPublisher, DeliveryLimits, PublishReport
from stream_app.clients.refusals import RefusalWatch
from stream_app.config import ConfigError, Settings
from stream_app.config.settings import build_section
from stream_app.wire.chunk import ChunkFormat
from stream_app.wire.chunk_codec import check_stream_id
from stream_app.wire.exceptions import ChunkRejected

STDIN = "-"


def register(subparsers: Any) -> None:
    """Add the `publish` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "publish", help="publish an audio file as a stream of chunks"
    )
    parser.add_argument(
        "file",
        type=Path,
        help="audio file (wav, flac, mp3, ogg, m4a, ...), or - for standard input: raw PCM with --pcm, or any "
        "container (WAV from arecord, FLAC, Ogg, ...), sent as it arrives until the pipe closes or Ctrl-C",
    )
    parser.add_argument(
        "--stream-id", help="stream id (the record key); default: file name (or 'stdin') plus a random suffix"
    )
    parser.add_argument("--chunk-ms", type=float, default=100.0, help="audio per chunk in ms (default 100)")
    parser.add_argument("--realtime", action="store_true", help="pace chunks at the audio's own speed")
    parser.add_argument(
        "--source-format",
        choices=SOURCE_FORMATS,
        default="native",
        help="native: the file's rate and channels (the service converts); s16le16k: 16 kHz mono s16le",
    )
    parser.add_argument("--encoding", choices=("s16le", "f32le"), default="s16le", help="sample encoding for native")
    raw = parser.add_argument_group("raw PCM on standard input (file -)")
    raw.add_argument("--pcm", choices=("s16le", "f32le"), help="the bytes are raw PCM in this encoding, interleaved")
    raw.add_argument("--rate", type=int, default=16_000, help="its sample rate in Hz (default 16000)")
    raw.add_argument("--channels", type=int, default=1, help="its channel count (default 1)")
    parser.add_argument("--topic", help="chunks topic (default: kafka.input_topic)")
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="give up at once when no broker answers within S seconds (default 10); an outage after that "
        "is ridden out within --delivery-timeout. 0: no check, ride out an outage from the first chunk "
        "(with --confirm 0, which needs the broker too)",
    )
    parser.add_argument(
        "--confirm",
        type=float,
        default=30.0,
        metavar="S",
        help="after sending, wait up to S seconds for the workers to read the stream and report the chunks they "
        "refused, from the dead-letter topic (default 30; 0: do not wait). Exit 1 when they refused all of it",
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
    live = str(args.file) == STDIN
    name = "stdin" if live else args.file.stem
    stream_id = args.stream_id if args.stream_id is not None else f"{name}-{uuid.uuid4().hex[:8]}"
    if live and args.source_format != "native":
        print(
            "stream-app publish: from standard input the audio goes out at its own rate and channels "
            "(the service converts); --source-format s16le16k needs a file",
            file=sys.stderr,
        )
        return 2
    topic = args.topic or settings.kafka.input_topic
    try:
        check_stream_id(stream_id)
    except ChunkRejected as exc:  # the workers would dead-letter every chunk (bad_stream_id)
        print(f"stream-app publish: --stream-id refused before sending: {exc.detail}", file=sys.stderr)
        return 2
    try:
        limits = delivery_limits(args, settings)
    except ConfigError as exc:
        print(f"stream-app publish: {exc}", file=sys.stderr)
        return 2
    try:
        if args.connect_timeout > 0:
            check_kafka_access(settings.kafka, timeout=args.connect_timeout)
        with contextlib.ExitStack() as stack:
            watch = None
            if args.confirm > 0:
                dlq = settings.kafka.dlq_topic
                watch = stack.enter_context(RefusalWatch(consumer_config(settings.kafka), dlq, stream_id))
            report = _send(args, settings, topic, stream_id, limits, watch)
            partitions = ",".join(str(p) for p in sorted(report.partitions))
            print(
                f"published stream {report.stream_id}: {report.chunks} chunks, {report.audio_seconds:.2f} s of audio, "
                f"{report.payload_bytes} bytes to {report.topic} (partition {partitions})",
                flush=True,
            )
            if watch is None:
                return 0
            return report_outcome(settings, report, watch, args.confirm, topic)
    except (AudioFileError, ValueError, PublishError, KafkaAccessError, KafkaException, RuntimeError) as exc:
        print(f"stream-app publish: {exc}", file=sys.stderr)
        return 1


def _send(
    args: argparse.Namespace,
    settings: Settings,
    topic: str,
    stream_id: str,
    limits: DeliveryLimits,
    watch: RefusalWatch | None,
) -> PublishReport:
    """Read the file (or the pipe) and send it; a real-time or live send says how far it got every few seconds."""
    if str(args.file) == STDIN:
        return _send_live(args, settings, topic, stream_id, limits, watch)
    audio = read_native_audio(args.file)
    progress = ProgressLine(audio.duration, watch) if args.realtime else None
    with ChunkPublisher(producer_config(settings.kafka), topic, limits=limits) as publisher:
        return publisher.publish_audio(
            audio,
            stream_id,
            chunk_ms=args.chunk_ms,
            source_format=args.source_format,
            encoding=args.encoding,
            realtime=args.realtime,
            max_chunk_bytes=settings.streaming.max_chunk_bytes,
            on_progress=progress,
        )


def _send_live(
    args: argparse.Namespace,
    settings: Settings,
    topic: str,
    stream_id: str,
    limits: DeliveryLimits,
    watch: RefusalWatch | None,
) -> PublishReport:
    """Send standard input as it arrives; the stream ends (end-of-stream chunk) when the pipe closes or on Ctrl-C."""
    raw = ChunkFormat(args.pcm, args.rate, args.channels) if args.pcm else None
    live = open_live_input(sys.stdin.fileno(), raw, args.encoding)
    problem = native_layout_problem(live.fmt.sample_rate, live.fmt.channels)
    if problem:
        raise ValueError(f"standard input is {problem}")
    print(
        f"sending standard input as {live.fmt} in stream {stream_id}; Ctrl-C or the end of input ends it",
        file=sys.stderr,
        flush=True,
    )
    with LiveInterrupt() as interrupt:
        chunks = chunk_pcm_stream(
            interrupt.until_interrupted(live.blocks),
            live.fmt,
            args.chunk_ms,
            max_bytes=settings.streaming.max_chunk_bytes,
        )
        with ChunkPublisher(producer_config(settings.kafka), topic, limits=limits) as publisher:
            return publisher.publish_chunks(
                stream_id, chunks, live.fmt, realtime=args.realtime, on_progress=ProgressLine(None, watch)
            )
