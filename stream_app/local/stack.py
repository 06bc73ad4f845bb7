"""The whole local stack (Kafka + Redis) behind one object: `up`, `down`, `status`."""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from stream_app.config import Settings
from stream_app.local.endpoints import StackLayout
from stream_app.local.kafka_node import KafkaNode
from stream_app.local.redis_node import RedisNode
from stream_app.local.service import ServiceState
from stream_app.local.topics import ensure_topics

log = logging.getLogger(__name__)

DEFAULT_START_TIMEOUT_S = 120.0


class LocalStack:
    """Real Kafka and Redis on 127.0.0.1 for development and integration tests, without Docker.

    Every operation is idempotent: ``up`` on a running stack only checks it and the topics,
    ``down`` on a stopped one does nothing.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.layout = StackLayout.from_settings(settings)
        self.kafka = KafkaNode(self.layout, settings.kafka.partitions)
        self.redis = RedisNode(self.layout)

    def up(self, *, timeout: float = DEFAULT_START_TIMEOUT_S, extra_topics: Iterable[str] = ()) -> list[str]:
        """Start what is not running, wait until both answer, create the service topics.

        Returns:
            The topics created by this call.

        Raises:
            LocalStackError: when a service cannot be fetched, started or reached in ``timeout`` seconds.
        """
        with _stack_lock(self.layout.home):
            self.redis.start(timeout)
            self.kafka.start(timeout)
        created = ensure_topics(self.settings, extra_topics, timeout=timeout)
        if created:
            log.info("created topics: %s", ", ".join(created))
        return created

    def down(self) -> list[str]:
        """Stop Kafka first (it flushes), then Redis; returns the names of the services that were stopped."""
        with _stack_lock(self.layout.home):
            return [node.name for node in (self.kafka, self.redis) if node.stop()]

    def status(self) -> list[ServiceState]:
        """Report each service: pid when this stack started it, whether it answers, its log file."""
        return [self.kafka.state(), self.redis.state()]

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
