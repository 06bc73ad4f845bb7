"""A private stack on free ports in a temporary home: start, restart, stop, and a start that must fail."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stream_app.config import Settings
from stream_app.local import LocalStack, LocalStackError, ensure_topics, service_topics

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _private_settings(settings: Settings, home: Path) -> Settings:
    kafka_port, controller_port, redis_port = _free_ports(3)
    return dataclasses.replace(
        settings,
        kafka=dataclasses.replace(
            settings.kafka,
            bootstrap_servers=f"127.0.0.1:{kafka_port}",
            controller_port=controller_port,
            partitions=2,
        ),
        local=dataclasses.replace(settings.local, home=str(home), redis_port=redis_port, kafka_heap="384m"),
    )


@pytest.fixture(scope="module")
def private_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One home for the module, so Maven fetches the jars into it once."""
    return tmp_path_factory.mktemp("local-stack")


@pytest.fixture
def private_stack(settings: Settings, private_home: Path) -> Iterator[LocalStack]:
    stack = LocalStack(_private_settings(settings, private_home))
    yield stack
    stack.down()


def test_up_is_idempotent_and_down_stops_everything(private_stack: LocalStack) -> None:
    # Two sessions starting the same stack at once: one starts it, the other waits and finds it running.
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: private_stack.up(timeout=120), range(2)))
    assert sorted(results[0] + results[1]) == sorted(service_topics(private_stack.settings))
    first = private_stack.status()
    assert [s.name for s in first] == ["kafka", "redis"]
    assert all(s.answering and s.pid is not None for s in first)
    assert (private_stack.layout.kafka_libs / "kafka_2.13-4.1.1.jar").is_file()

    assert private_stack.up(timeout=120) == []  # already running: nothing started, nothing created
    assert [s.pid for s in private_stack.status()] == [s.pid for s in first]

    assert private_stack.down() == ["kafka", "redis"]
    after = private_stack.status()
    assert not any(s.answering for s in after)
    assert all(s.pid is None for s in after)
    assert private_stack.down() == []


def test_a_restarted_broker_keeps_its_topics(private_stack: LocalStack, settings: Settings) -> None:
    private_stack.up(timeout=120)
    extra = "lifecycle-kept"
    ensure_topics(private_stack.settings, [extra], include_service_topics=False)
    private_stack.down()
    assert not private_stack.is_up()

    private_stack.up(timeout=120)
    assert private_stack.is_up()
    assert ensure_topics(private_stack.settings, [extra]) == []  # storage was reused, not reformatted


def test_a_taken_controller_port_fails_fast_naming_the_log(private_stack: LocalStack) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", private_stack.settings.kafka.controller_port))
    blocker.listen()
    try:
        with pytest.raises(LocalStackError) as info:
            private_stack.up(timeout=120)
    finally:
        blocker.close()
    message = str(info.value)
    assert "Kafka" in message
    assert str(private_stack.layout.kafka_log) in message
    assert "already in use" in message
    assert private_stack.kafka.pid() is None
