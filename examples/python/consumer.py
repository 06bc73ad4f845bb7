#!/usr/bin/env python3
"""Print one stream's live transcript: interim text overwritten in place, final lines kept.

Segments come from `stream_app.clients.tail.TranscriptTail` (every partition of the transcripts
topic, no consumer group, nothing committed). `TranscriptAssembler` applies the contract's one rule
(schemas/transcript-segment.v3.json): per ``segment_id`` it keeps the record with the highest
revision, and a final's revision is above every interim of its id, so a final is never replaced and a
replay (at-least-once delivery) changes nothing: it is neither printed nor counted twice. Records of
schemas v2 and v1, published before an upgrade with finals at revision 0, are read too: the codec
ranks such a final above every interim of its id. The program stops at the stream's end of stream
and prints the whole final text as ``transcript: ...`` (exit 0), or at ``--timeout`` (exit 1).

On a terminal the interim line is rewritten as it changes; into a pipe or file each change is a
line starting with ``~``. By default only segments published from now on are read (start it before
the recorder); ``--from-beginning`` reads the topic's history too and stops at the first end of
stream it reads for the id, so use it for stream ids used once. From the repository root, with the
local stack and a worker running::

    .venv/bin/python examples/python/consumer.py --stream-id mic-7
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from stream_app.clients.exceptions import TailError
from stream_app.clients.kafka_config import consumer_config
from stream_app.clients.tail import TranscriptTail
from stream_app.clients.transcript import TranscriptAssembler
from stream_app.config import ConfigError, load_settings
from stream_app.wire.segment import TranscriptSegment

CLEAR_LINE = "\r\x1b[K"


class LiveView:
    """Show finals as lines and the current interim text as one line that is rewritten."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.session: str | None = None
        self._interim_shown = False

    def show(self, segment: TranscriptSegment) -> None:
        """Print one segment that changed the transcript."""
        if segment.session != self.session:
            if self.session is not None:  # the stream came back after its end (idle timeout) or was reset
                self._write_line(f"-- session {segment.session} --")
            self.session = segment.session
        if segment.is_final:
            notes = "".join(f"  <{g.reason}: {g.start:.2f}-{g.end:.2f} s not transcribed>" for g in segment.gaps)
            notes += "  <end of stream>" if segment.end_of_stream else ""
            text = segment.text.strip()
            if text or notes:
                self._write_line(f"[{segment.start:8.2f} - {segment.end:8.2f}] {text}{notes}")
        elif self.tty:
            self.out.write(f"{CLEAR_LINE}~ {segment.text.strip()}")  # an empty interim retracts the preview
            self.out.flush()
            self._interim_shown = True
        else:
            self._write_line(f"~ {segment.text.strip()}  (r{segment.revision})")

    def _write_line(self, line: str) -> None:
        if self._interim_shown:
            self.out.write(CLEAR_LINE)
            self._interim_shown = False
        self.out.write(line + "\n")
        self.out.flush()


def main(argv: list[str] | None = None) -> int:
    """Follow one stream until its end of stream; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream-id", required=True, help="the stream to follow")
    parser.add_argument("--from-beginning", action="store_true", help="read the topic's history, not only new text")
    parser.add_argument("--timeout", type=float, help="give up after this many seconds")
    parser.add_argument("--topic", help="transcripts topic (default: kafka.output_topic)")
    parser.add_argument("-c", "--config", help="stream-app TOML configuration (default: $STREAM_APP_CONFIG)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"consumer: {exc}", file=sys.stderr)
        return 2
    topic = args.topic or settings.kafka.output_topic
    assembler = TranscriptAssembler(args.stream_id)
    view = LiveView(sys.stdout)
    try:
        with TranscriptTail(
            consumer_config(settings.kafka),
            topic,
            stream_id=args.stream_id,
            from_beginning=args.from_beginning,
            topic_wait=args.timeout if args.timeout is not None else 30.0,
        ) as tail:
            print(f"listening to {topic} for stream {args.stream_id}", file=sys.stderr, flush=True)
            for segment in tail.segments(timeout=args.timeout):
                if assembler.add(segment):  # False: a replay or a stale revision, nothing new
                    view.show(segment)
                if assembler.ended:
                    break
    except TailError as exc:
        print(f"consumer: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    result = assembler.result()
    print(f"transcript: {result.text}", flush=True)
    if not result.complete:
        print("consumer: timed out before the end of the stream", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
