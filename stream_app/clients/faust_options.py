"""The keyword arguments of ``faust.App`` that security decides: broker credentials and the web server.

The worker builds its app with ``faust.App(..., **faust_broker_options(kafka), **faust_web_options(worker))``,
so the faust consumer, producer and admin connections use the same protocol, SASL user and TLS
files as the confluent-kafka clients (`stream_app.clients.kafka_config`).
"""

from __future__ import annotations

from typing import Any

import faust

from stream_app.clients.tls import kafka_ssl_context
from stream_app.config.settings import KafkaSettings, WorkerSettings


def faust_broker_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Return ``broker_credentials`` for faust (none for PLAINTEXT).

    faust hands them to aiokafka: `SASLCredentials` with a TLS context means SASL_SSL, without one
    SASL_PLAINTEXT; `SSLCredentials` means SSL.
    """
    protocol = kafka.security_protocol
    if protocol == "PLAINTEXT":
        return {}
    context = kafka_ssl_context(kafka) if protocol.endswith("SSL") else None
    if protocol.startswith("SASL_"):
        credentials: Any = faust.SASLCredentials(
            username=kafka.username,
            password=kafka.password.reveal(),
            ssl_context=context,
            mechanism=kafka.sasl_mechanism,
        )
    else:
        credentials = faust.SSLCredentials(context)
    return {"broker_credentials": credentials}


def faust_web_options(worker: WorkerSettings) -> dict[str, Any]:
    """Return faust's web server settings: off unless ``worker.web_enabled``, bound to ``worker.web_host``.

    The replica's health and metrics live on our own server (`stream_app.metrics`); faust's pages
    of table contents, statistics, the service graph and the key router stay off even when its web
    server runs, and it binds to the configured host (faust's own default is every interface).
    """
    return {
        "web_enabled": worker.web_enabled,
        "web_bind": worker.web_host,
        "web_host": worker.web_host,
        "web_port": worker.web_port,
        "web_tables_enabled": False,
        "web_stats_enabled": False,
        "web_graph_enabled": False,
        "web_router_enabled": False,
        "web_metrics_enabled": False,
    }
