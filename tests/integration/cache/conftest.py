"""A real ``redis-server`` per test, on a free port, that a test can stop, restart and pause."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cache_fixtures import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            server.resume()
        server.stop()
