"""What the brokers allow a consumer group member: read from their configuration, not assumed.

A replica's session timeout decides how soon a killed replica's streams move (docs/operations.md,
"Failover"); brokers refuse a session shorter than their ``group.min.session.timeout.ms`` (6 s unless
changed), and a member asking for less cannot join at all. The worker reads the value here and asks
for no less.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource  # not re-exported for type checkers

from stream_app.clients.described_config import ConfigUnreadable, config_values
from stream_app.clients.kafka_config import admin_config
from stream_app.clients.kafka_errors import LibrdkafkaLog
from stream_app.config.settings import KafkaSettings

log = logging.getLogger(__name__)

MIN_SESSION_KEY = "group.min.session.timeout.ms"


def min_session_timeout(kafka: KafkaSettings, timeout: float = 10.0) -> float | None:
    """Return the largest ``group.min.session.timeout.ms`` of the brokers, in seconds.

    None when it cannot be read (no broker answered, or describing broker configurations is not
    allowed to this client); the caller then keeps its own setting.
    """
    conf = admin_config(kafka)
    conf.pop("logger", None)
    admin = AdminClient(conf, logger=LibrdkafkaLog())
    try:
        brokers = sorted(admin.list_topics(timeout=timeout).brokers)
        resources = [ConfigResource(ConfigResource.Type.BROKER, str(broker)) for broker in brokers]
        found = [int(value) / 1000.0 for value in config_values(admin, resources, MIN_SESSION_KEY, timeout).values()]
    except (KafkaException, ConfigUnreadable, ValueError, TimeoutError) as exc:
        log.info("could not read the brokers' %s (%s)", MIN_SESSION_KEY, exc)
        return None
    return max(found) if found else None
