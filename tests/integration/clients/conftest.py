from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from stream_app.clients.kafka_config import consumer_config, producer_config
from stream_app.config import Settings


@pytest.fixture
def fresh_topic(new_topic: Callable[..., str]) -> str:
    """A new three-partition topic, so a stream's records must still stay on one partition."""
    return new_topic("clients", partitions=3)


@pytest.fixture
def producer_conf(settings: Settings) -> dict[str, Any]:
    return producer_config(settings.kafka)


@pytest.fixture
def consumer_conf(settings: Settings) -> dict[str, Any]:
    return consumer_config(settings.kafka)
