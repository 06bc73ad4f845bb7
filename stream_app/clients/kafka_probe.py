"""Check that Kafka accepts this configuration's connection: a metadata request, refusals in words."""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from stream_app.clients.exceptions import KafkaAccessError
from stream_app.clients.kafka_config import admin_config
from stream_app.clients.kafka_errors import KafkaAccessWatch
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
    admin = AdminClient(conf, logger=_QuietLog())
    deadline = time.monotonic() + timeout
    last: KafkaException | None = None
    while watch.problem is None and time.monotonic() < deadline:
        try:
            metadata = admin.list_topics(timeout=min(1.0, max(0.1, deadline - time.monotonic())))
        except KafkaException as exc:
            last = exc
            admin.poll(0.1)  # deliver pending error events to the watch
            continue
        return len(metadata.brokers)
    if watch.problem is not None:
        raise KafkaAccessError(watch.problem)
    raise KafkaAccessError(
        f"no Kafka broker answered at {kafka.bootstrap_servers} ({kafka.security_protocol}) within {timeout:.0f} s"
        + (f": {last.args[0]}" if last is not None else "")
    )


class _QuietLog:
    """librdkafka's log lines at DEBUG: each retry repeats the refusal, which the raised error states once."""

    def __init__(self) -> None:
        self._log = logging.getLogger("stream_app.clients.librdkafka")

    def log(self, level: int, message: str, *args: Any) -> None:
        """Take one log line from librdkafka."""
        self._log.debug(message, *args)
