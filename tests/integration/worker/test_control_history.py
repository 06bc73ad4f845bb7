"""A starting replica reads the control topic to its end before it loads a model (real broker, no model)."""

from __future__ import annotations

import dataclasses

from stream_app.config import Settings
from stream_app.worker.control import ReplicaStatus, encode_status, publish_command, switch_command
from stream_app.worker.control_start import ControlHistory, read_control_history


def test_the_history_holds_every_switch_in_order_and_where_the_topic_ended(isolated_settings: Settings) -> None:
    kafka = isolated_settings.kafka
    assert read_control_history(kafka, timeout=30).switches == ()  # a fresh topic: the configured model
    first, second = switch_command("base", "int8", now=10.0), switch_command("tiny.en", None, now=20.0)
    publish_command(kafka, first)
    publish_command(kafka, second)
    from confluent_kafka import Producer

    from stream_app.clients.kafka_config import producer_config

    producer = Producer(producer_config(kafka))
    producer.produce(kafka.control_topic, value=encode_status(ReplicaStatus("r9", None, at=30.0)))
    producer.produce(kafka.control_topic, value=b"{not json")
    producer.flush(10)
    history = read_control_history(kafka, timeout=30)
    assert [c.id for c in history.switches] == [first.id, second.id]
    assert sum(history.ends.values()) == 4  # the listener follows from here: nothing read twice or skipped


def test_a_missing_control_topic_holds_no_switch(isolated_settings: Settings) -> None:
    absent = f"{isolated_settings.kafka.control_topic}-absent"
    kafka = dataclasses.replace(isolated_settings.kafka, control_topic=absent)
    assert read_control_history(kafka, timeout=30) == ControlHistory((), {})
