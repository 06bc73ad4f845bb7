"""`stream-app captions`: serve a caption page that follows the transcripts topic (server-sent events)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from stream_app.captions.server import CaptionServer
from stream_app.clients.exceptions import TailError
from stream_app.clients.kafka_config import consumer_config
from stream_app.clients.tail import TranscriptTail
from stream_app.config import Settings
from stream_app.wire.segment import TranscriptSegment


def register(subparsers: Any) -> None:
    """Add the `captions` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "captions", help="serve a web page of live captions that follows the transcripts topic"
    )
    parser.add_argument("--stream-id", help="only this stream (default: every stream)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8088, help="port to listen on (default 8088; 0 picks one)")
    parser.add_argument("--from-beginning", action="store_true", help="show the topic's history too, not only new text")
    parser.add_argument("--topic", help="transcripts topic (default: kafka.output_topic)")
    parser.set_defaults(handler=_captions)


def _captions(args: argparse.Namespace, settings: Settings) -> int:
    topic = args.topic or settings.kafka.output_topic
    config = consumer_config(settings.kafka)
    try:  # opened here, so a wrong address or a missing topic ends the command before it serves anything
        tail = TranscriptTail(config, topic, stream_id=args.stream_id, from_beginning=args.from_beginning)
    except TailError as exc:
        print(f"stream-app captions: {exc}", file=sys.stderr)
        return 1

    def follow(stopping: threading.Event) -> Iterator[TranscriptSegment]:
        with tail:
            while not stopping.is_set():
                yield from tail.segments(timeout=1.0)

    title = f"Captions: {args.stream_id}" if args.stream_id else f"Captions: {topic}"
    try:
        server = CaptionServer(args.host, args.port, follow, title)
    except OSError as exc:
        tail.close()
        print(f"stream-app captions: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    print(f"captions at {server.url} (following {topic}; Ctrl-C stops)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve()
    if server.error is not None:
        print(f"stream-app captions: {server.error}", file=sys.stderr)
        return 1
    return 0
