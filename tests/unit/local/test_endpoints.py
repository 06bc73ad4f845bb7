from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from stream_app.config import Settings
from stream_app.local import HostPort, LocalStackError, StackLayout, parse_host_port


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9092", HostPort("127.0.0.1", 9092)),
        ("localhost:19092,other:9092", HostPort("localhost", 19092)),
        (" kafka:9094 ", HostPort("kafka", 9094)),
        ("PLAINTEXT://127.0.0.1:9092", HostPort("127.0.0.1", 9092)),
        ("[::1]:9092", HostPort("::1", 9092)),
    ],
)
def test_parse_host_port_accepts_bootstrap_forms(text: str, expected: HostPort) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize("text", ["9092", ":9092", "host:", "host:port", "host:0", "host:70000", ""])
def test_parse_host_port_rejects_what_is_not_an_endpoint(text: str) -> None:
    with pytest.raises(LocalStackError):
        parse_host_port(text)


def test_host_port_prints_as_host_colon_port() -> None:
    assert str(HostPort("127.0.0.1", 6379)) == "127.0.0.1:6379"


def test_layout_follows_settings(settings: Settings, tmp_path: Path) -> None:
    custom = dataclasses.replace(
        settings,
        kafka=dataclasses.replace(settings.kafka, bootstrap_servers="127.0.0.1:29092", controller_port=29093),
        local=dataclasses.replace(settings.local, home=str(tmp_path), redis_port=26379, kafka_heap="256m"),
    )
    layout = StackLayout.from_settings(custom)
    assert layout.kafka == HostPort("127.0.0.1", 29092)
    assert layout.controller == HostPort("127.0.0.1", 29093)
    assert layout.redis == HostPort("127.0.0.1", 26379)
    assert layout.kafka_heap == "256m"
    assert layout.kafka_libs == tmp_path / "kafka-4.1.1" / "libs"
    assert layout.kafka_classpath == f"{tmp_path}/kafka-4.1.1/libs/*"
    # Run-time folders are per port, so two stacks in one home never share data or pid files.
    assert layout.kafka_data == tmp_path / "kafka-29092" / "data"
    assert layout.kafka_pid.parent == layout.kafka_log.parent == tmp_path / "kafka-29092"
    assert layout.redis_pid.parent == tmp_path / "redis-26379"


def test_layout_expands_the_home_folder(settings: Settings) -> None:
    layout = StackLayout.from_settings(settings)
    assert "~" not in str(layout.home)
    assert layout.home.is_absolute()
