"""`stream-app tail`: follow the transcripts topic, interim lines as they change and final lines for good."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stream_app.clients.exceptions import TailError
from stream_app.clients.kafka_config import consumer_config
from stream_app.clients.tail import TranscriptTail
from stream_app.clients.transcript import FinalTranscript, TranscriptAssembler, format_segment_line
from stream_app.config import Settings
from stream_app.wire.segment_codec import encode_segment


def register(subparsers: Any) -> None:
    """Add the `tail` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser("tail", help="print transcript segments as they come")
    parser.add_argument("--stream-id", help="only this stream")
    parser.add_argument("--json", action="store_true", help="print each segment as one JSON line")
    parser.add_argument("--from-beginning", action="store_true", help="start at the oldest segment, not now")
    parser.add_argument(
        "--until-end-of-stream",
        action="store_true",
        help="stop at the stream's end-of-stream segment and print its final text (needs --stream-id)",
    )
    parser.add_argument("--timeout", type=float, help="stop after this many seconds")
    parser.add_argument("--topic", help="transcripts topic (default: kafka.output_topic)")
    parser.set_defaults(handler=_tail)


def _tail(args: argparse.Namespace, settings: Settings) -> int:
    if args.until_end_of_stream and not args.stream_id:
        print("stream-app tail: --until-end-of-stream needs --stream-id", file=sys.stderr)
        return 2
    topic = args.topic or settings.kafka.output_topic
    assembler = TranscriptAssembler(args.stream_id) if args.stream_id else None
    try:
        with TranscriptTail(
            consumer_config(settings.kafka),
            topic,
            stream_id=args.stream_id,
            from_beginning=args.from_beginning,
            topic_wait=args.timeout if args.timeout is not None else 30.0,
        ) as tail:
            for segment in tail.segments(timeout=args.timeout):
                if assembler is not None and not assembler.add(segment):
                    continue  # a replay or a stale revision: nothing new to show
                print(encode_segment(segment).decode() if args.json else format_segment_line(segment), flush=True)
                if args.until_end_of_stream and assembler is not None and assembler.ended:
                    break
    except TailError as exc:
        print(f"stream-app tail: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if args.until_end_of_stream and assembler is not None:
        return _final_transcript(assembler.result(), args)
    return 0


def _final_transcript(result: FinalTranscript, args: argparse.Namespace) -> int:
    """Print the stream's final text once it ended; without its end, say so and print no transcript."""
    if not result.complete:
        waited = f" within {args.timeout:g} s" if args.timeout is not None else ""
        print(
            f"stream-app tail: no end of stream {result.stream_id}{waited} ({len(result.segments)} final segment(s) "
            "so far): is a worker running, and did the workers refuse its chunks? (stream-app publish reports that)",
            file=sys.stderr,
        )
        return 1
    if not args.json:
        text = result.text or "(no words: the stream ended without speech the model transcribed)"
        print(f"final transcript of {result.stream_id}: {text}")
    return 0
