"""Where each local service listens, derived from `Settings` alone (pure, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stream_app.config import Settings, expand_path
from stream_app.local.exceptions import LocalStackError

LOG4J_VERSION = "2.24.3"


@dataclass(frozen=True)
class HostPort:
    """One TCP endpoint."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_host_port(value: str) -> HostPort:
    """Parse ``host:port`` (or ``[v6]:port``); the first entry of a comma-separated list is used.

    Raises:
        LocalStackError: when the value has no valid port.
    """
    first = value.split(",")[0].strip()
    if "://" in first:
        first = first.split("://", 1)[1]
    host, sep, port_text = first.rpartition(":")
    if not sep or not host:
        raise LocalStackError(f"expected host:port, got {value!r}")
    host = host.strip("[]")
    try:
        port = int(port_text)
    except ValueError:
        raise LocalStackError(f"expected host:port with a numeric port, got {value!r}") from None
    if not 0 < port < 65536:
        raise LocalStackError(f"port out of range in {value!r}")
    return HostPort(host, port)


@dataclass(frozen=True)
class StackLayout:
    """Files and endpoints of one local stack: everything lives under ``home``."""

    home: Path
    kafka_version: str
    kafka: HostPort
    controller: HostPort
    redis: HostPort
    kafka_heap: str
    secure: bool = False  # SASL_SSL Kafka and TLS Redis with passwords (`local up --secure`)

    @classmethod
    def from_settings(cls, settings: Settings, *, secure: bool = False) -> StackLayout:
        """Derive the layout from the configuration; the broker binds where clients are told to connect."""
        kafka = parse_host_port(settings.kafka.bootstrap_servers)
        return cls(
            home=expand_path(settings.local.home),
            kafka_version=settings.kafka.kafka_version,
            kafka=kafka,
            controller=HostPort(kafka.host, settings.kafka.controller_port),
            redis=HostPort("127.0.0.1", settings.local.redis_port),
            kafka_heap=settings.local.kafka_heap,
            secure=secure,
        )

    @property
    def kafka_dist(self) -> Path:
        """The Maven-fetched distribution of this Kafka version (shared by every data folder)."""
        return self.home / f"kafka-{self.kafka_version}"

    @property
    def kafka_libs(self) -> Path:
        """Folder of the broker's jars."""
        return self.kafka_dist / "libs"

    @property
    def kafka_classpath(self) -> str:
        """Java class path covering every jar of the distribution."""
        return f"{self.kafka_libs}/*"

    @property
    def kafka_dir(self) -> Path:
        """Run-time folder of the broker listening on this port (config, data, pid and log).

        A secure broker has its own folder, so a plain one on the same port is never mistaken for it.
        """
        return self.home / f"kafka-{self.kafka.port}{'-sasl' if self.secure else ''}"

    @property
    def kafka_data(self) -> Path:
        """The broker's ``log.dirs`` (also holds the KRaft metadata log)."""
        return self.kafka_dir / "data"

    @property
    def server_properties(self) -> Path:
        """The broker's rendered configuration."""
        return self.kafka_dir / "server.properties"

    @property
    def log4j_config(self) -> Path:
        """The broker's log4j2 configuration."""
        return self.kafka_dir / "log4j2.properties"

    @property
    def kafka_pid(self) -> Path:
        """Pid file of the detached broker."""
        return self.kafka_dir / "kafka.pid"

    @property
    def kafka_log(self) -> Path:
        """Standard output and error of the broker."""
        return self.kafka_dir / "kafka.log"

    @property
    def format_marker(self) -> Path:
        """Records what the storage was formatted for, so a changed endpoint reformats it."""
        return self.kafka_dir / "formatted-for.txt"

    @property
    def redis_dir(self) -> Path:
        """Run-time folder of the Redis listening on this port (its own for a TLS Redis)."""
        return self.home / f"redis-{self.redis.port}{'-tls' if self.secure else ''}"

    @property
    def redis_config(self) -> Path:
        """The TLS Redis's configuration file (it holds passwords: owner-only)."""
        return self.redis_dir / "redis.conf"

    @property
    def tls_dir(self) -> Path:
        """The secure stack's CA, certificates and keystore (shared by Kafka and Redis)."""
        return self.home / "tls"

    @property
    def secrets_dir(self) -> Path:
        """The secure stack's generated passwords, one file each (owner-only)."""
        return self.home / "secrets"

    @property
    def client_config(self) -> Path:
        """The TOML overlay a client needs for the secure stack (`stream-app -c <it> ...`)."""
        return self.home / f"secure-client-{self.kafka.port}.toml"

    @property
    def redis_pid(self) -> Path:
        """Pid file that the daemonized redis-server writes."""
        return self.redis_dir / "redis.pid"

    @property
    def redis_log(self) -> Path:
        """Redis's log file."""
        return self.redis_dir / "redis.log"
