"""Integration tests run against the real local stack: Kafka (KRaft) and Redis on 127.0.0.1.

The session fixture starts the stack when it is not running (as `stream-app local up` would) and
never skips: a stack that cannot start makes the tests error, with the broker's log in the message.
Each test gets fresh topic names and group ids (uuid) so tests never see each other's messages.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stream_app.config import Settings
from stream_app.local import LocalStack, delete_topics, ensure_topics

INTEGRATION_DIR = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything under tests/integration as `integration` (select with `-m integration`)."""
    for item in items:
        if INTEGRATION_DIR in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def local_stack(settings: Settings) -> LocalStack:
    """The running local stack (started here when needed; left running for the next run)."""
    stack = LocalStack(settings)
    stack.up()
    return stack


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Return a factory of fresh names: ``unique_name("chunks")`` -> ``"test-chunks-<uuid hex>"``."""

    def make(prefix: str = "t") -> str:
        return f"test-{prefix}-{uuid.uuid4().hex}"

    return make


@pytest.fixture
def new_group_id(unique_name: Callable[[str], str]) -> Callable[[str], str]:
    """Return a factory of fresh consumer group ids."""

    def make(prefix: str = "group") -> str:
        return unique_name(prefix)

    return make


@pytest.fixture
def new_topic(settings: Settings, unique_name: Callable[[str], str]) -> Iterator[Callable[..., str]]:
    """Return ``new_topic(prefix="t", partitions=None) -> name``: a fresh topic, deleted after the test."""
    created: list[str] = []

    def make(prefix: str = "t", partitions: int | None = None) -> str:
        name = unique_name(prefix)
        ensure_topics(settings, [name], partitions=partitions, include_service_topics=False)
        created.append(name)
        return name

    yield make
    delete_topics(settings, created)


@pytest.fixture
def isolated_settings(
    settings: Settings, new_topic: Callable[..., str], new_group_id: Callable[[str], str]
) -> Settings:
    """Default settings with fresh, already created input/output/dlq/control topics and a fresh group id."""
    kafka = dataclasses.replace(
        settings.kafka,
        input_topic=new_topic("chunks"),
        output_topic=new_topic("transcripts"),
        dlq_topic=new_topic("dlq"),
        control_topic=new_topic("control"),
        group_id=new_group_id("app"),
    )
    return dataclasses.replace(settings, kafka=kafka)
