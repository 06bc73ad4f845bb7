"""A Kafka and a Redis of one's own, on free ports, to stop and start without disturbing anyone else.

Fault tests and the chaos benchmark restart the broker and Redis; on a shared machine that must never
touch the stack other tests use. `PrivateStack` runs a `LocalStack` in its own temporary home on free
ports and hands out `Settings` pointing at it. The broker's jars are reused from the configured
home when a complete copy is there (read only), so no Maven fetch is needed.
"""

from __future__ import annotations

import dataclasses
import shutil
import socket
import tempfile
import time
from pathlib import Path
from types import TracebackType

from stream_app.config import Settings
from stream_app.local import LocalStack, StackLayout
from stream_app.local.maven import kafka_jars_present

START_TIMEOUT_S = 180.0


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct free TCP ports on loopback (held together while chosen, so distinct)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def private_settings(settings: Settings, home: Path, *, kafka_heap: str = "384m") -> Settings:
    """Return ``settings`` pointed at a stack in ``home`` on free ports (broker, controller, Redis)."""
    kafka_port, controller_port, redis_port = free_ports(3)
    return dataclasses.replace(
        settings,
        kafka=dataclasses.replace(
            settings.kafka, bootstrap_servers=f"127.0.0.1:{kafka_port}", controller_port=controller_port
        ),
        caching=dataclasses.replace(settings.caching, l3_redis_url=f"redis://127.0.0.1:{redis_port}/0"),
        local=dataclasses.replace(settings.local, home=str(home), redis_port=redis_port, kafka_heap=kafka_heap),
    )


@dataclasses.dataclass(frozen=True)
class Outage:
    """One stop and start of a service: when it went down and how long it did not answer (seconds)."""

    service: str
    began: float  # time.monotonic() when the stop began
    down_seconds: float  # from the stop's start until the service answered again (>= the wait asked for)


class PrivateStack:
    """A private local stack for fault tests: ``with PrivateStack(settings) as stack: stack.settings ...``.

    Everything lives in a temporary folder removed on exit, after both services were stopped.
    """

    def __init__(self, settings: Settings, *, kafka_heap: str = "384m") -> None:
        self.home = Path(tempfile.mkdtemp(prefix="stream-app-private-"))
        self.settings = private_settings(settings, self.home, kafka_heap=kafka_heap)
        self.stack = LocalStack(self.settings)
        _share_jars(StackLayout.from_settings(settings), self.stack.layout)

    def __enter__(self) -> PrivateStack:
        try:
            self.stack.up(timeout=START_TIMEOUT_S)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop both services and remove the home."""
        try:
            self.stack.down()
        finally:
            shutil.rmtree(self.home, ignore_errors=True)

    def stop_broker(self) -> None:
        """Stop the broker cleanly (SIGTERM, as a rolling upgrade does); returns once it exited."""
        self.stack.kafka.stop()

    def start_broker(self) -> None:
        """Start the broker again and wait until it answers."""
        self.stack.kafka.start(START_TIMEOUT_S)

    def broker_outage(self, seconds: float) -> Outage:
        """Stop the broker, keep it stopped ``seconds`` after it exited, start it again."""
        began = time.monotonic()
        self.stop_broker()
        time.sleep(seconds)
        self.start_broker()
        return Outage("kafka", began, time.monotonic() - began)

    def redis_outage(self, seconds: float) -> Outage:
        """Stop Redis (its cache is lost: no persistence), keep it stopped ``seconds``, start it again."""
        began = time.monotonic()
        self.stack.redis.stop()
        time.sleep(seconds)
        self.stack.redis.start(START_TIMEOUT_S)
        return Outage("redis", began, time.monotonic() - began)


def _share_jars(source: StackLayout, target: StackLayout) -> None:
    """Link the target's Kafka distribution to the source's when the source holds a complete one."""
    if source.kafka_version != target.kafka_version or not kafka_jars_present(source):
        return
    target.home.mkdir(parents=True, exist_ok=True)
    if not target.kafka_dist.exists():
        target.kafka_dist.symlink_to(source.kafka_dist, target_is_directory=True)
