"""`stream-app tail`: follow the transcripts topic as a caption feed: interims replaced by finals, gaps shown.

Every stream's records are de-duplicated by the documented rule (the highest revision per
``segment_id``, a final above every interim), so a worker's replay after a failover prints nothing
twice. On a terminal each open interim is a bottom row replaced in place; on a pipe every new version
is a line. ``--format srt|vtt`` writes subtitles from the finals' word times.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stream_app.captions.subtitles import FORMATS
from stream_app.cli.tail_render import LiveCaptions, PlainLines, Renderer, SubtitleLines
from stream_app.clients.exceptions import TailError
from stream_app.clients.feed import LatestRevisions
from stream_app.clients.kafka_config import consumer_config
from stream_app.clients.tail import TranscriptTail
from stream_app.clients.transcript import FinalTranscript, TranscriptAssembler
from stream_app.config import Settings


def register(subparsers: Any) -> None:
    """Add the `tail` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "tail", help="print transcript segments as they come (a caption feed)"
    )
    parser.add_argument("--stream-id", help="only this stream")
    parser.add_argument(
        "--format",
        choices=("text", "json", *FORMATS),
        default="text",
        help="text: one line per version, the segment id first (on a terminal interims are replaced in place); "
        "json: each new version as one JSON line; srt, vtt: subtitles from final segments (needs --stream-id)",
    )
    parser.add_argument("--json", action="store_true", help="the same as --format json")
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
    fmt = "json" if args.json else args.format
    if args.until_end_of_stream and not args.stream_id:
        print("stream-app tail: --until-end-of-stream needs --stream-id", file=sys.stderr)
        return 2
    if fmt in FORMATS and not args.stream_id:
        print(f"stream-app tail: --format {fmt} is one stream's subtitles: give --stream-id", file=sys.stderr)
        return 2
    topic = args.topic or settings.kafka.output_topic
    assembler = TranscriptAssembler(args.stream_id) if args.stream_id else None
    fresh = LatestRevisions()
    renderer = _renderer(fmt)
    try:
        with TranscriptTail(
            consumer_config(settings.kafka),
            topic,
            stream_id=args.stream_id,
            from_beginning=args.from_beginning,
            topic_wait=args.timeout if args.timeout is not None else 30.0,
        ) as tail:
            for segment in tail.segments(timeout=args.timeout):
                if assembler is not None:
                    assembler.add(segment)
                if fresh.offer(segment):  # else a replay or a stale revision: nothing new to show
                    renderer.show(segment)
                if args.until_end_of_stream and assembler is not None and assembler.ended:
                    break
    except TailError as exc:
        renderer.close()
        print(f"stream-app tail: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        renderer.close()
        return 130
    renderer.close()
    if args.until_end_of_stream and assembler is not None:
        return _final_transcript(assembler.result(), args, quiet=fmt != "text")
    return 0


def _renderer(fmt: str) -> Renderer:
    if fmt in FORMATS:
        return SubtitleLines(sys.stdout, fmt)
    if fmt == "text" and sys.stdout.isatty():
        return LiveCaptions(sys.stdout)
    return PlainLines(sys.stdout, as_json=fmt == "json")


def _final_transcript(result: FinalTranscript, args: argparse.Namespace, *, quiet: bool) -> int:
    """Print the stream's final text once it ended; without its end, say so and print no transcript."""
    if not result.complete:
        waited = f" within {args.timeout:g} s" if args.timeout is not None else ""
        print(
            f"stream-app tail: no end of stream {result.stream_id}{waited} ({len(result.segments)} final segment(s) "
            "so far): is a worker running, and did the workers refuse its chunks? (stream-app publish reports that)",
            file=sys.stderr,
        )
        return 1
    if not quiet:
        text = result.text or "(no words: the stream ended without speech the model transcribed)"
        print(f"final transcript of {result.stream_id}: {text}")
    return 0
