#!/usr/bin/env python3
"""List the records of the dead-letter topic: why each was refused, which stream, where it came from.

Refused chunks are kept byte for byte (key, value, headers) with ``dlq_reason``, ``dlq_detail`` and
their source topic, partition and offset; given-up windows carry their stream, session, window and
stream time instead (docs/streaming-api.md, "The dead-letter topic"). This reads every partition from
its oldest record up to where it ended when the program started, prints one line per record, and
stops (``--follow`` keeps waiting for new ones). Nothing is committed: it never disturbs anyone.
From the repository root::

    .venv/bin/python examples/python/dead_letters.py
"""

from __future__ import annotations

import argparse
import sys

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from stream_app.clients.kafka_config import consumer_config
from stream_app.config import ConfigError, load_settings


def describe(message: Message) -> str:
    """Render one dead-letter record as a line: reason, detail, stream, origin, size."""
    raw = message.headers() or []  # a consumer hands a list of (name, bytes)
    headers = {name: _text(value) for name, value in (raw.items() if isinstance(raw, dict) else raw)}
    key = message.key()
    stream = headers.get("dlq_stream_id") or (key.decode("utf-8", errors="replace") if key else "<no key>")
    origin = f"{headers.get('dlq_source_topic', '?')}[{headers.get('dlq_source_partition', '?')}]"
    if "dlq_window" in headers:  # a window the worker gave up: its 16 kHz audio, from several records
        where = (
            f"session {headers.get('dlq_session')} window {headers['dlq_window']} "
            f"({headers.get('dlq_stream_start')}-{headers.get('dlq_stream_end')} s), "
            f"from {origin} offsets {headers.get('dlq_source_offsets') or '?'}"
        )
    else:  # a refused input record, as it arrived
        where = f"from {origin}@{headers.get('dlq_source_offset', '?')}"
    size = len(message.value() or b"")
    return (
        f"{message.partition()}@{message.offset()} {headers.get('dlq_reason', '?')}: {headers.get('dlq_detail', '')}"
        f"  [stream {stream!r}, {where}, {size} bytes]"
    )


def _text(value: str | bytes | None) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value or ""


def main(argv: list[str] | None = None) -> int:
    """Print the dead letters; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--follow", action="store_true", help="keep waiting for new dead letters (Ctrl-C stops)")
    parser.add_argument("--topic", help="dead-letter topic (default: kafka.dlq_topic)")
    parser.add_argument("-c", "--config", help="stream-app TOML configuration (default: $STREAM_APP_CONFIG)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"dead_letters: {exc}", file=sys.stderr)
        return 2
    topic = args.topic or settings.kafka.dlq_topic
    consumer = Consumer(consumer_config(settings.kafka))
    try:
        metadata = consumer.list_topics(topic, timeout=15)
        partitions = metadata.topics[topic].partitions if topic in metadata.topics else {}
        if not partitions or metadata.topics[topic].error is not None:
            print(f"dead_letters: topic {topic} does not exist", file=sys.stderr)
            return 1
        ends: dict[int, int] = {}
        pending: set[int] = set()
        start = []
        for number in sorted(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, number), timeout=15)
            ends[number] = high
            start.append(TopicPartition(topic, number, low))
            if high > low:
                pending.add(number)  # records to read up to where the partition ended at start
        consumer.assign(start)
        count = 0
        while args.follow or pending:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                continue
            print(describe(message), flush=True)
            count += 1
            partition, offset = message.partition(), message.offset()
            if partition is not None and offset is not None and offset + 1 >= ends.get(partition, 0):
                pending.discard(partition)
    except KafkaException as exc:
        print(f"dead_letters: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        consumer.close()
    print(f"{count} dead letter(s) on {topic}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
