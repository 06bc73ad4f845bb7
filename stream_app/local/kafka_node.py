"""A single-node Apache Kafka in KRaft mode, run from Maven-fetched jars as a detached JVM."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from stream_app.local.admin import admin_client
from stream_app.local.endpoints import StackLayout
from stream_app.local.exceptions import LocalStackError
from stream_app.local.maven import fetch_kafka_jars
from stream_app.local.process import running_pid, start_detached, stop_process
from stream_app.local.rendering import (
    format_identity,
    packaged_log4j_config,
    render_properties,
    server_properties,
)
from stream_app.local.service import ServiceState, wait_until_answering

log = logging.getLogger(__name__)

STORAGE_TOOL = "kafka.tools.StorageTool"
BROKER_MAIN = "kafka.Kafka"


@dataclass(frozen=True)
class BrokerSecurity:
    """What makes the local broker secure: its listener settings, its users, and how a probe logs in."""

    properties: Mapping[str, str]  # replaces entries of server.properties (listeners, SASL, TLS)
    format_args: tuple[str, ...] = ()  # extra `kafka-storage format` arguments (SCRAM users)
    client: Mapping[str, Any] = field(default_factory=dict)  # librdkafka security properties of the probe

    @property
    def identity(self) -> str:
        """A digest of what formatting bakes in (the users), so changed users mean reformatting."""
        return hashlib.sha256("\0".join(self.format_args).encode()).hexdigest()[:16]


class KafkaNode:
    """The local broker+controller that workers, publishers and integration tests connect to."""

    name = "kafka"

    def __init__(self, layout: StackLayout, partitions: int, security: BrokerSecurity | None = None) -> None:
        self._layout = layout
        self._partitions = partitions
        self._security = security

    @property
    def _marker(self) -> str:
        # The config path is unique to this stack, so another stack's broker never matches.
        return str(self._layout.server_properties)

    def answering(self, timeout: float = 2.0) -> bool:
        """Return whether a broker at the endpoint answers a metadata request."""
        admin = admin_client(str(self._layout.kafka), self._security.client if self._security else None)
        try:
            admin.list_topics(timeout=timeout)
        except KafkaException:
            return False
        return True

    def pid(self) -> int | None:
        """Return the pid of the broker this stack started, when it runs."""
        return running_pid(self._layout.kafka_pid, self._marker)

    def start(self, timeout: float) -> bool:
        """Fetch, configure and format on first use, start the broker unless it runs, wait until it answers.

        Returns:
            True when this call started the broker (False: it was running, or another one answers there).

        Raises:
            LocalStackError: when Java or Maven is missing, formatting fails, or the broker does not answer.
        """
        layout = self._layout
        pid = self.pid()
        if pid is None and self.answering(timeout=1.0):
            log.warning("a Kafka not started by stream-app already answers at %s; using it", layout.kafka)
            return False
        started = pid is None
        if pid is None:
            java = _java()
            fetch_kafka_jars(layout)
            self._write_config()
            self._format_storage(java)
            _rotate(layout.kafka_log)
            argv = [
                java, f"-Xmx{layout.kafka_heap}",
                f"-Dlog4j2.configurationFile={layout.log4j_config}",
                "-cp", layout.kafka_classpath, BROKER_MAIN, str(layout.server_properties),
            ]  # fmt: skip
            pid = start_detached(argv, pid_file=layout.kafka_pid, log_file=layout.kafka_log, cwd=layout.kafka_dir)
            log.info("started Kafka %s (pid %d) at %s", layout.kafka_version, pid, layout.kafka)
        wait_until_answering("Kafka", self.answering, pid=pid, log_file=layout.kafka_log, timeout=timeout)
        return started

    def stop(self) -> bool:
        """Stop the broker this stack started (a clean shutdown can take a few seconds)."""
        return stop_process(self._layout.kafka_pid, self._marker, grace=30.0)

    def state(self) -> ServiceState:
        """Report what runs at the Kafka endpoint."""
        return ServiceState(
            self.name, self._layout.kafka, self.pid(), self.answering(timeout=1.0), self._layout.kafka_log
        )

    def _write_config(self) -> None:
        layout = self._layout
        layout.kafka_dir.mkdir(parents=True, exist_ok=True)
        values = server_properties(layout, self._partitions)
        if self._security is not None:
            values.update(self._security.properties)
        _write_private(layout.server_properties, render_properties(values))  # it may hold passwords
        layout.log4j_config.write_text(packaged_log4j_config(), encoding="utf-8")

    def _format_storage(self, java: str) -> None:
        """Format the KRaft storage once; again only when what it bakes in (the controller) changed."""
        layout = self._layout
        identity = format_identity(layout)
        extra: tuple[str, ...] = ()
        if self._security is not None:
            identity += f"users={self._security.identity}\n"
            extra = tuple(self._security.format_args)
        marker = layout.format_marker
        formatted = (layout.kafka_data / "meta.properties").is_file()
        if formatted and marker.is_file() and marker.read_text(encoding="utf-8") == identity:
            return
        if layout.kafka_data.exists():
            log.warning("reformatting %s: it was formatted for a different controller or users", layout.kafka_data)
            shutil.rmtree(layout.kafka_data)
        cluster_id = self._storage_tool(java, "random-uuid").strip().splitlines()[-1]
        self._storage_tool(
            java, "format", "--standalone", "-t", cluster_id, "-c", str(layout.server_properties), *extra
        )
        marker.write_text(identity, encoding="utf-8")

    def _storage_tool(self, java: str, *args: str) -> str:
        layout = self._layout
        argv = [
            java, f"-Dlog4j2.configurationFile={layout.log4j_config}",
            "-cp", layout.kafka_classpath, STORAGE_TOOL, *args,
        ]  # fmt: skip
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()[-3000:]
            raise LocalStackError(f"kafka-storage {args[0]} failed (exit {result.returncode}):\n{output}")
        return result.stdout


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise LocalStackError("Java 17 or newer is needed for the local Kafka (apt install openjdk-17-jre-headless)")
    return java


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # an older file keeps its mode through O_TRUNC


def _rotate(log_file: Path) -> None:
    """Keep the previous run's log as ``.1`` so each start begins a fresh, readable log."""
    if log_file.exists():
        log_file.replace(log_file.with_name(log_file.name + ".1"))
