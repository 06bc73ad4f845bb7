"""The whole local stack (Kafka + Redis) behind one object: `up`, `down`, `status`."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from stream_app.config import Settings
from stream_app.local.endpoints import StackLayout
from stream_app.local.kafka_node import KafkaNode
from stream_app.local.redis_node import RedisNode
from stream_app.local.secure import broker_security, redis_security, secure_client_settings, write_client_config
from stream_app.local.secure_material import SecureMaterial, ensure_secure_material, existing_secure_material
from stream_app.local.service import ServiceState
from stream_app.local.topics import ensure_topics

log = logging.getLogger(__name__)

DEFAULT_START_TIMEOUT_S = 120.0


class LocalStack:
    """Real Kafka and Redis on 127.0.0.1 for development and integration tests, without Docker.

    Every operation is idempotent: ``up`` on a running stack only checks it and the topics,
    ``down`` on a stopped one does nothing.

    A secure stack (``secure=True``, or settings whose ``kafka.security_protocol`` is SASL_SSL, as
    the client overlay it writes says) runs Kafka with a SASL_SSL listener and Redis with TLS and
    passwords, each in its own folder under ``local.home``; ``up`` makes the certificates and
    passwords on first use and writes the client overlay (`client_config`). ``settings`` is then
    the client's view of the stack: the one its probes and topic creation use.
    """

    def __init__(self, settings: Settings, *, secure: bool | None = None) -> None:
        self.secure = settings.kafka.security_protocol == "SASL_SSL" if secure is None else secure
        self.layout = StackLayout.from_settings(settings, secure=self.secure)
        self._given = settings
        self.started: list[str] = []  # the services the last `up` started (not those already running)
        self._material = existing_secure_material(self.layout) if self.secure else None
        self._configure()

    def _configure(self) -> None:
        """Build the nodes (and the client's settings) for the plain stack or from the secure material."""
        material, settings = self._material, self._given
        if material is None:
            self.settings = settings
            self.kafka = KafkaNode(self.layout, settings.kafka.partitions)
            self.redis = RedisNode(self.layout)
            return
        self.settings = secure_client_settings(settings, self.layout, material)
        security = broker_security(self.layout, material, self.settings)
        self.kafka = KafkaNode(self.layout, settings.kafka.partitions, security)
        self.redis = RedisNode(self.layout, redis_security(self.layout, material, self.settings))

    @property
    def material(self) -> SecureMaterial | None:
        """The secure stack's passwords and TLS files (None for a plain stack, or before the first `up`)."""
        return self._material

    @property
    def client_config(self) -> Path | None:
        """The client overlay of a secure stack once `up` wrote it."""
        path = self.layout.client_config
        return path if self.secure and path.is_file() else None

    def up(self, *, timeout: float = DEFAULT_START_TIMEOUT_S, extra_topics: Iterable[str] = ()) -> list[str]:
        """Start what is not running, wait until both answer, create the service topics.

        Returns:
            The topics created by this call.

        Raises:
            LocalStackError: when a service cannot be fetched, started or reached in ``timeout`` seconds.
        """
        with _stack_lock(self.layout.home):
            if self.secure:
                self._material = ensure_secure_material(self.layout)
                self._configure()
                write_client_config(self.layout, self._material)
            self.started = [node.name for node in (self.redis, self.kafka) if node.start(timeout)]
        created = ensure_topics(self.settings, extra_topics, timeout=timeout)
        if created:
            log.info("created topics: %s", ", ".join(created))
        return created

    def down(self, only: Iterable[str] | None = None) -> list[str]:
        """Stop Kafka first (it flushes), then Redis (``only``: those named); return the names of those stopped."""
        wanted = {"kafka", "redis"} if only is None else set(only)
        with _stack_lock(self.layout.home):
            return [node.name for node in (self.kafka, self.redis) if node.name in wanted and node.stop()]

    def running(self) -> bool:
        """Whether a service this stack started (its pid file, its command line) runs now."""
        return self.kafka.pid() is not None or self.redis.pid() is not None

    def status(self) -> list[ServiceState]:
        """Report each service: pid when this stack started it, whether it answers, its log file."""
        states = [self.kafka.state(), self.redis.state()]
        if self.secure and self._material is None:  # never started: whatever answers there is not this stack
            states = [dataclasses.replace(state, answering=False) for state in states]
        return states

    def is_up(self) -> bool:
        """Return whether both services answer."""
        return all(state.answering for state in self.status())


@contextlib.contextmanager
def _stack_lock(home: Path) -> Iterator[None]:
    """Serialise starts and stops across processes (two test sessions calling `up` at once)."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / "stack.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
