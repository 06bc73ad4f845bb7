"""Configuration values read from the cluster: a topic's, a broker's, and a topic that is not there."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource  # not re-exported for type checkers

from stream_app.clients.described_config import ConfigUnreadable, config_values
from stream_app.clients.kafka_config import admin_config
from stream_app.config import Settings
from stream_app.local.rendering import NODE_ID
from stream_app.local.topics import ensure_topics

pytestmark = pytest.mark.integration


def admin(settings: Settings) -> AdminClient:
    conf = admin_config(settings.kafka)
    conf.pop("logger", None)
    return AdminClient(conf)


def test_a_topic_s_and_a_broker_s_values_come_by_name(settings: Settings) -> None:
    ensure_topics(settings)
    topic = settings.kafka.input_topic
    client = admin(settings)
    resources = [
        ConfigResource(ConfigResource.Type.TOPIC, topic),
        ConfigResource(ConfigResource.Type.BROKER, str(NODE_ID)),
    ]
    assert config_values(client, resources, "cleanup.policy", timeout=10.0) == {topic: "delete"}
    broker = config_values(client, resources[1:], "group.min.session.timeout.ms", timeout=10.0)
    assert broker == {str(NODE_ID): "2000"}  # stream_app/local/rendering.py


def test_a_topic_that_is_not_there_is_named_in_the_error(settings: Settings) -> None:
    resources = [ConfigResource(ConfigResource.Type.TOPIC, "no-such-topic-for-config")]
    with pytest.raises(ConfigUnreadable) as raised:
        config_values(admin(settings), resources, "cleanup.policy", timeout=10.0)
    assert raised.value.name == "no-such-topic-for-config"
    assert "no-such-topic-for-config" in str(raised.value)
