"""End-to-end tests run the `stream-app` console script as a user does, against the local stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream_app.config import Settings
from stream_app.local import LocalStack

E2E_DIR = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything under tests/e2e as `e2e`."""
    for item in items:
        if E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def local_stack(settings: Settings) -> LocalStack:
    """The running local stack (started here when needed)."""
    stack = LocalStack(settings)
    stack.up()
    return stack
