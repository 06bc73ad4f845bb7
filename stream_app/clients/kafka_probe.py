"""Check that Kafka accepts this configuration's connection: a metadata request, refusals in words."""

from __future__ import annotations

import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from stream_app.clients.exceptions import KafkaAccessError
from stream_app.clients.kafka_config import admin_config
from stream_app.clients.kafka_errors import KafkaAccessWatch, LibrdkafkaLog, unreachable_message
from stream_app.config.settings import KafkaSettings


def check_kafka_access(kafka: KafkaSettings, timeout: float = 15.0) -> int:
    """Ask the broker for its metadata with the configured security; return how many brokers answered.

    Returns early with the cause when the broker refuses the credentials or the certificate.

    Raises:
        KafkaAccessError: the broker refused us (the message names the cause and the key to fix),
            or no broker answered within ``timeout``.
    """
    conf = admin_config(kafka)
    watch = KafkaAccessWatch(kafka, log_problems=False)  # the error raised below says it
    conf["error_cb"] = watch
    conf.pop("logger", None)
    admin = AdminClient(conf, logger=LibrdkafkaLog())
    deadline = time.monotonic() + timeout
    while watch.problem is None and time.monotonic() < deadline:
        try:
            metadata = admin.list_topics(timeout=min(1.0, max(0.1, deadline - time.monotonic())))
        except KafkaException:
            admin.poll(0.1)  # deliver pending error events to the watch
            continue
        return len(metadata.brokers)
    if watch.problem is not None:
        raise KafkaAccessError(watch.problem)
    raise KafkaAccessError(unreachable_message(conf, timeout))
