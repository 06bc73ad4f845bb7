"""Text of the files the local broker needs: the Maven pom and ``server.properties`` (pure)."""

from __future__ import annotations

from importlib import resources

from stream_app.local.endpoints import LOG4J_VERSION, StackLayout

NODE_ID = 1
# Partitions of __consumer_offsets: the broker default (50) only slows a one-node start-up.
OFFSETS_PARTITIONS = 8


def render_pom(kafka_version: str, log4j_version: str = LOG4J_VERSION) -> str:
    """Return the packaged ``pom.xml`` with the Kafka and log4j2 versions filled in."""
    template = resources.files("stream_app.local").joinpath("pom.xml").read_text(encoding="utf-8")
    return template.replace("@KAFKA_VERSION@", kafka_version).replace("@LOG4J_VERSION@", log4j_version)


def packaged_log4j_config() -> str:
    """Return the packaged log4j2 configuration of the broker."""
    return resources.files("stream_app.local").joinpath("log4j2.properties").read_text(encoding="utf-8")


def server_properties(layout: StackLayout, partitions: int) -> dict[str, str]:
    """Return the settings of a single combined broker+controller in KRaft mode (local use only)."""
    return {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "controller.quorum.bootstrap.servers": str(layout.controller),
        "listeners": f"PLAINTEXT://{layout.kafka},CONTROLLER://{layout.controller}",
        "advertised.listeners": f"PLAINTEXT://{layout.kafka},CONTROLLER://{layout.controller}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(layout.kafka_data),
        "num.partitions": str(partitions),
        "auto.create.topics.enable": "true",
        "default.replication.factor": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "min.insync.replicas": "1",
        "group.initial.rebalance.delay.ms": "0",
        # Brokers refuse a session timeout under 6 s by default; the local broker allows 2 s so that
        # `worker.session_timeout` can be measured below it (docs/operations.md, "recovery time").
        "group.min.session.timeout.ms": "2000",
        "offsets.topic.num.partitions": str(OFFSETS_PARTITIONS),
        "log.retention.hours": "24",
        "log.segment.bytes": str(64 * 1024 * 1024),
    }


def render_properties(values: dict[str, str]) -> str:
    """Serialise settings as a Java ``.properties`` file (keys in insertion order)."""
    lines = ["# Written by `stream-app local up`; regenerated on every start."]
    lines += [f"{key}={_escape(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def format_identity(layout: StackLayout) -> str:
    """Return what the KRaft storage bakes in at format time: a change means reformatting."""
    return f"kafka={layout.kafka_version} node={NODE_ID} controller={layout.controller}\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")
