"""A single-node Apache Kafka in KRaft mode, run from Maven-fetched jars as a detached JVM."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

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


class KafkaNode:
    """The local broker+controller that workers, publishers and integration tests connect to."""

    name = "kafka"

    def __init__(self, layout: StackLayout, partitions: int) -> None:
        self._layout = layout
        self._partitions = partitions

    @property
    def _marker(self) -> str:
        # The config path is unique to this stack, so another stack's broker never matches.
        return str(self._layout.server_properties)

    def answering(self, timeout: float = 2.0) -> bool:
        """Return whether a broker at the endpoint answers a metadata request."""
        admin = admin_client(str(self._layout.kafka))
        try:
            admin.list_topics(timeout=timeout)
        except KafkaException:
            return False
        return True

    def pid(self) -> int | None:
        """Return the pid of the broker this stack started, when it runs."""
        return running_pid(self._layout.kafka_pid, self._marker)

    def start(self, timeout: float) -> None:
        """Fetch, configure and format on first use, start the broker unless it runs, wait until it answers.

        Raises:
            LocalStackError: when Java or Maven is missing, formatting fails, or the broker does not answer.
        """
        layout = self._layout
        pid = self.pid()
        if pid is None and self.answering(timeout=1.0):
            log.warning("a Kafka not started by stream-app already answers at %s; using it", layout.kafka)
            return
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
        properties = render_properties(server_properties(layout, self._partitions))
        layout.server_properties.write_text(properties, encoding="utf-8")
        layout.log4j_config.write_text(packaged_log4j_config(), encoding="utf-8")

    def _format_storage(self, java: str) -> None:
        """Format the KRaft storage once; again only when what it bakes in (the controller) changed."""
        layout = self._layout
        identity = format_identity(layout)
        marker = layout.format_marker
        formatted = (layout.kafka_data / "meta.properties").is_file()
        if formatted and marker.is_file() and marker.read_text(encoding="utf-8") == identity:
            return
        if layout.kafka_data.exists():
            log.warning("reformatting %s: it was formatted for a different controller", layout.kafka_data)
            shutil.rmtree(layout.kafka_data)
        cluster_id = self._storage_tool(java, "random-uuid").strip().splitlines()[-1]
        self._storage_tool(java, "format", "--standalone", "-t", cluster_id, "-c", str(layout.server_properties))
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


def _rotate(log_file: Path) -> None:
    """Keep the previous run's log as ``.1`` so each start begins a fresh, readable log."""
    if log_file.exists():
        log_file.replace(log_file.with_name(log_file.name + ".1"))
