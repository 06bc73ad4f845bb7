"""confluent-kafka configuration dictionaries built from the one ``Settings`` object.

Every client (publisher, tail, admin, control) gets the same security properties from
`security_config`, the same `KafkaAccessWatch` as ``error_cb``, so a refused password or an
untrusted certificate is reported in words by whichever client meets it first, and librdkafka's
own log lines at DEBUG (`LibrdkafkaLog`), so a wrong address is one sentence, not a flood.
"""

from __future__ import annotations

import uuid
from typing import Any

from stream_app.clients.kafka_errors import KafkaAccessWatch, LibrdkafkaLog
from stream_app.config.settings import KafkaSettings, expand_path


def security_config(kafka: KafkaSettings) -> dict[str, Any]:
    """Return librdkafka's security properties for ``kafka``: protocol, SASL credentials, TLS files.

    Hostname verification is librdkafka's ``ssl.endpoint.identification.algorithm``; with it off the
    certificate chain is still verified against the CA.
    """
    protocol = kafka.security_protocol
    conf: dict[str, Any] = {"security.protocol": protocol}
    if protocol.startswith("SASL_"):
        conf["sasl.mechanism"] = kafka.sasl_mechanism
        conf["sasl.username"] = kafka.username
        conf["sasl.password"] = kafka.password.reveal()
    if protocol.endswith("SSL"):
        conf["ssl.endpoint.identification.algorithm"] = "https" if kafka.ssl_check_hostname else "none"
        if kafka.ssl_ca_file:
            conf["ssl.ca.location"] = str(expand_path(kafka.ssl_ca_file))
        if kafka.ssl_cert_file:
            conf["ssl.certificate.location"] = str(expand_path(kafka.ssl_cert_file))
            conf["ssl.key.location"] = str(expand_path(kafka.ssl_key_file))
        if kafka.ssl_key_password:
            conf["ssl.key.password"] = kafka.ssl_key_password.reveal()
    return conf


def _common(kafka: KafkaSettings) -> dict[str, Any]:
    return {
        "bootstrap.servers": kafka.bootstrap_servers,
        **security_config(kafka),
        "error_cb": KafkaAccessWatch(kafka),
        "logger": LibrdkafkaLog(),  # no flood of connection failures on stderr; the caller says it once
    }


def admin_config(kafka: KafkaSettings) -> dict[str, Any]:
    """Build an admin client configuration (topics, metadata probes)."""
    return {**_common(kafka), "client.id": "stream-app-admin"}


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
