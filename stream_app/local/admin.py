"""The confluent-kafka admin client the local stack uses to probe the broker and manage topics."""

from __future__ import annotations

import logging

from confluent_kafka.admin import AdminClient

# librdkafka reports every refused connection while the broker starts; route it to a debug-only logger.
_LIBRDKAFKA_LOG = logging.getLogger("stream_app.local.librdkafka")


def admin_client(bootstrap: str, security_protocol: str = "PLAINTEXT") -> AdminClient:
    """Return an admin client whose connection chatter stays out of the console."""
    conf: dict[str, str | int | float | bool] = {
        "bootstrap.servers": bootstrap,
        "security.protocol": security_protocol,
    }
    return AdminClient(conf, logger=_LIBRDKAFKA_LOG)
