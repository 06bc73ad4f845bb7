"""A wrong bootstrap address: one sentence naming the address and the setting, at once, no librdkafka flood."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stream_app.testing.private_stack import free_ports

STREAM_APP = [sys.executable, "-m", "stream_app.cli.main"]


@pytest.fixture
def nobody() -> str:
    """An address where no broker listens (a free port, released again)."""
    return f"127.0.0.1:{free_ports(1)[0]}"


def _run(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_APP_")}
    env["STREAM_APP_KAFKA__BOOTSTRAP_SERVERS"] = address
    # the guard is far below publish's 5-minute delivery timeout: waiting for it fails the test
    return subprocess.run([*STREAM_APP, *args], env=env, capture_output=True, text=True, timeout=90, check=False)


def _assert_one_sentence(result: subprocess.CompletedProcess[str], address: str) -> None:
    output = result.stdout + result.stderr
    assert "%3|" not in output and "Connection refused" not in output, output[:2000]
    assert f"no Kafka broker answered at {address}" in output, output
    assert "kafka.bootstrap_servers" in output and "STREAM_APP_KAFKA__BOOTSTRAP_SERVERS" in output


def test_tail_names_the_address_and_the_setting(nobody: str) -> None:
    result = _run(nobody, "tail", "--timeout", "5")
    assert result.returncode == 1
    _assert_one_sentence(result, nobody)
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_models_list_names_the_address_and_the_setting(nobody: str) -> None:
    result = _run(nobody, "models", "list", "--replicas-timeout", "3")
    assert result.returncode == 0  # the local models are listed; only the replicas are unknown
    _assert_one_sentence(result, nobody)
    assert "tiny.en" in result.stdout


def test_publish_fails_fast_when_no_broker_answers(nobody: str, jfk_path: Path) -> None:
    result = _run(nobody, "publish", str(jfk_path), "--stream-id", "nobody-home", "--connect-timeout", "3")
    assert result.returncode == 1
    _assert_one_sentence(result, nobody)
    assert "within 3 s" in result.stderr
