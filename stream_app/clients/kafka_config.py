"""confluent-kafka configuration dictionaries built from the one ``Settings`` object."""

from __future__ import annotations

import uuid
from typing import Any

from stream_app.config.settings import KafkaSettings


def _common(kafka: KafkaSettings) -> dict[str, Any]:
    return {"bootstrap.servers": kafka.bootstrap_servers, "security.protocol": kafka.security_protocol}


def producer_config(kafka: KafkaSettings, client_id: str = "stream-app-publisher") -> dict[str, Any]:
    """Build a producer configuration: acks from all replicas, idempotent, so chunks stay in order."""
    return {
        **_common(kafka),
        "client.id": client_id,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        # murmur2 on the key, as the Java client and faust partition: a stream's chunks land where
        # any other Kafka producer would put records with the same key
        "partitioner": "murmur2_random",
        "compression.type": "none",  # PCM barely compresses; spare the CPU
    }


def consumer_config(kafka: KafkaSettings, group_id: str | None = None) -> dict[str, Any]:
    """Build a read-only consumer configuration: a fresh group that never commits, so tails never meddle."""
    return {
        **_common(kafka),
        "group.id": group_id or f"stream-app-tail-{uuid.uuid4().hex[:12]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
    }
