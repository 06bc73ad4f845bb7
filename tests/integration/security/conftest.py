"""The secure local stack for these tests: SASL_SSL Kafka and TLS Redis with passwords, started here.

One stack per test session, on free ports and in its own home folder, so it never touches the plain
stack the other tests share; it is stopped when the session ends. The Kafka jars the plain stack
fetched are reused (a symlink) instead of being copied again by Maven. A missing tool (openssl,
Java, redis-server) makes the fixture fail with the tool's name, never skip.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from secure_fixtures import SecureStack

from stream_app.config import Settings
from stream_app.local import LocalStack
from stream_app.local.maven import kafka_jars_present
from stream_app.testing.service import free_port


@pytest.fixture(scope="session")
def secure_stack(
    settings: Settings, local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureStack]:
    home = tmp_path_factory.mktemp("secure-home")
    jars = local_stack.layout.kafka_dist
    if kafka_jars_present(local_stack.layout):
        (home / jars.name).symlink_to(jars, target_is_directory=True)
    custom = dataclasses.replace(
        settings,
        kafka=dataclasses.replace(
            settings.kafka, bootstrap_servers=f"127.0.0.1:{free_port()}", controller_port=free_port()
        ),
        local=dataclasses.replace(settings.local, home=str(home), redis_port=free_port()),
    )
    stack = LocalStack(custom, secure=True)
    try:
        stack.up()
        assert stack.material is not None and stack.client_config is not None
        yield SecureStack(stack, stack.settings, stack.client_config, stack.material)
    finally:
        stack.down()
