"""The confluent-kafka admin client the local stack uses to probe the broker and manage topics."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from confluent_kafka.admin import AdminClient

# librdkafka reports every refused connection while the broker starts; route it to a debug-only logger.
_LIBRDKAFKA_LOG = logging.getLogger("stream_app.local.librdkafka")


def admin_client(bootstrap: str, security: Mapping[str, Any] | None = None) -> AdminClient:
    """Return an admin client whose connection chatter stays out of the console.

    ``security`` holds the client's security properties (`stream_app.clients.kafka_config.security_config`);
    without it the client speaks PLAINTEXT.
    """
    conf: dict[str, Any] = {"security.protocol": "PLAINTEXT", **(security or {}), "bootstrap.servers": bootstrap}
    return AdminClient(conf, logger=_LIBRDKAFKA_LOG)
