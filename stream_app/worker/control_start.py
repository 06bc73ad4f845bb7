"""What a starting replica serves: the model the control topic last switched to, not the configured one.

The replicas that were running when a switch was published applied it; a replica that starts later
(a restart, a scale-out) must serve the same model, or a stream that moves to it is replayed and
continued on another model than the one its segments came from. So before the worker joins the
group, the control topic is read from its beginning to its end: the latest switch that can be
served here is loaded instead of the configured model, and the listener then follows the topic from
exactly the end offsets read, so a command published meanwhile is not missed. "Latest" is the offset
order of `COMMAND_PARTITION`, the order the running replicas applied them in; a command's
``issued_at`` comes from its writer's clock and orders nothing.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from stream_app.clients.kafka_config import consumer_config
from stream_app.config.settings import KafkaSettings
from stream_app.inference.model_roots import allowed_model
from stream_app.inference.registry import ModelKey
from stream_app.worker.control import COMMAND_PARTITION, ControlMessageError, SwitchCommand, decode_control

log = logging.getLogger(__name__)

MISSING_GRACE = 5.0  # seconds a control topic may be unknown to the broker before it counts as absent


class ControlTopicUnreadable(ConnectionError):
    """The control topic could not be read to its end in time (the worker does not start on a guess)."""


@dataclass(frozen=True)
class ControlHistory:
    """The switch commands on the control topic, oldest first, and where the topic ended when read."""

    switches: tuple[SwitchCommand, ...]
    ends: dict[int, int]  # partition -> end offset: where following the topic resumes


def read_control_history(kafka: KafkaSettings, timeout: float = 30.0) -> ControlHistory:
    """Read the switch commands of `COMMAND_PARTITION`, in offset order, up to the end offset found first.

    Records the topic no longer holds (retention, deleted records) are not waited for: a partition is
    read once nothing is left between its low and its high watermark.

    Raises:
        ControlTopicUnreadable: the topic is missing or was not read to its end within ``timeout``.
    """
    topic = kafka.control_topic
    consumer = Consumer(consumer_config(kafka))
    deadline = time.monotonic() + timeout
    found: list[SwitchCommand] = []
    try:
        marks = _watermarks(consumer, topic, deadline)
        low, end = marks.get(COMMAND_PARTITION, (0, 0))
        if end > low:
            consumer.assign([TopicPartition(topic, COMMAND_PARTITION, OFFSET_BEGINNING)])
        while end > low:
            if time.monotonic() > deadline:
                raise ControlTopicUnreadable(f"control topic {topic} not read to its end in {timeout:.0f} s")
            message = consumer.poll(0.2)
            if message is None or message.error():
                continue
            offset = message.offset()
            if offset is None or offset >= end:
                continue  # published after the end was taken: the listener reads it
            low = offset + 1
            with contextlib.suppress(ControlMessageError):
                record = decode_control(message.value())
                if isinstance(record, SwitchCommand):
                    found.append(record)
    finally:
        consumer.close()
    return ControlHistory(tuple(found), {p: high for p, (_low, high) in marks.items()})


def _watermarks(consumer: Consumer, topic: str, deadline: float) -> dict[int, tuple[int, int]]:
    """Each partition's (low, high) watermarks, retried until ``deadline`` (a new topic's leaders may not be known yet).

    A topic that stays missing for `MISSING_GRACE` seconds holds no switch: the listener waits for it, as
    it always did, and the replica starts on the configured model.
    """
    missing_since: float | None = None
    while True:
        try:
            meta = consumer.list_topics(topic, timeout=5.0).topics.get(topic)
            if meta is None or meta.error is not None or not meta.partitions:
                missing_since = missing_since or time.monotonic()
                if time.monotonic() - missing_since > MISSING_GRACE:
                    log.warning("control topic %s is not there: starting on the configured model", topic)
                    return {}
                raise ControlTopicUnreadable(f"control topic {topic} is not there")
            partitions = [TopicPartition(topic, p) for p in meta.partitions]
            marks: dict[int, tuple[int, int]] = {}
            for tp in partitions:
                low, high = consumer.get_watermark_offsets(tp, timeout=5.0)
                marks[tp.partition] = (low, high)
            return marks
        except (KafkaException, ControlTopicUnreadable) as exc:
            if time.monotonic() > deadline:
                raise ControlTopicUnreadable(f"control topic {topic}: {exc}") from exc
            time.sleep(0.5)


@dataclass(frozen=True)
class StartChoice:
    """The model a starting replica loads, and the command it came from (None: the configured model)."""

    model: str | None
    precision: str | None
    command: SwitchCommand | None
    refused: tuple[str, ...] = ()  # why later commands were passed over


def start_engine(
    start: Callable[[str | None, str | None], ModelKey], switches: Sequence[SwitchCommand], roots: Sequence[str]
) -> tuple[ModelKey, StartChoice]:
    """Start on the latest switch this replica can serve (as the running replicas did), else the configured model.

    A switch the running replicas refused (a model outside the roots, one that fails to load) left them
    on the model before it, so an older command is tried next, and the configured model last.
    """
    refused: list[str] = []
    for command in reversed(switches):
        try:
            model = allowed_model(command.model, roots)
            key = start(model, command.precision)
        except Exception as exc:  # refused or not loadable here: the replicas kept the model before it
            refused.append(f"switch {command.id} to {command.model}: {type(exc).__name__}: {exc}")
            log.warning("control: not starting on %s", refused[-1])
            continue
        log.info("control: starting on %s, the model switch %s asked for", key, command.id)
        return key, StartChoice(model, command.precision, command, tuple(refused))
    return start(None, None), StartChoice(None, None, None, tuple(refused))
