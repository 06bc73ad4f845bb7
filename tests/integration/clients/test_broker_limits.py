"""The brokers' group limits are read from their configuration, as the worker does at start."""

from __future__ import annotations

import dataclasses

import pytest

from stream_app.clients.broker_limits import min_session_timeout
from stream_app.config import Settings

pytestmark = pytest.mark.integration


def test_the_local_brokers_minimum_session_is_read(settings: Settings) -> None:
    assert min_session_timeout(settings.kafka) == 2.0  # stream_app/local/rendering.py sets 2000 ms


def test_no_broker_means_no_figure_and_the_setting_stands(settings: Settings) -> None:
    nowhere = dataclasses.replace(settings.kafka, bootstrap_servers="127.0.0.1:9")
    assert min_session_timeout(nowhere, timeout=2.0) is None
