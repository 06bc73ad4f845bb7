"""`local down` stops whichever stack runs (the secure one too), `status` shows it, `run` stops only what it started.

Each test has its own home and free ports (the jars linked from the shared home), so the shared plain
stack on 9092/6379 is never touched.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream_app.local import LocalStack
from stream_app.local.maven import kafka_jars_present
from stream_app.testing.private_stack import free_ports

pytestmark = [pytest.mark.slow]

STREAM_APP = [sys.executable, "-m", "stream_app.cli.main"]


@pytest.fixture
def private_env(local_stack: LocalStack, tmp_path: Path) -> Iterator[dict[str, str]]:
    home = tmp_path / "home"
    home.mkdir()
    shared = local_stack.layout
    if kafka_jars_present(shared):
        (home / shared.kafka_dist.name).symlink_to(shared.kafka_dist, target_is_directory=True)
    kafka, controller, redis = free_ports(3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_APP_")}
    env.update(
        {
            "STREAM_APP_LOCAL__HOME": str(home),
            "STREAM_APP_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka}",
            "STREAM_APP_KAFKA__CONTROLLER_PORT": str(controller),
            "STREAM_APP_LOCAL__REDIS_PORT": str(redis),
            "STREAM_APP_LOCAL__KAFKA_HEAP": "384m",
        }
    )
    yield env
    _cli(env, "local", "down")  # whatever a failed test left running
    _cli(env, "local", "down", "--secure")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STREAM_APP, *args], env=env, capture_output=True, text=True, timeout=400, check=False)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _ports(env: dict[str, str]) -> list[int]:
    return [int(env["STREAM_APP_KAFKA__BOOTSTRAP_SERVERS"].rsplit(":", 1)[1]), int(env["STREAM_APP_LOCAL__REDIS_PORT"])]


def test_down_stops_the_secure_stack_and_status_shows_it(private_env: dict[str, str]) -> None:
    up = _cli(private_env, "local", "up", "--secure")
    assert up.returncode == 0, up.stdout + up.stderr

    status = _cli(private_env, "local", "status")  # no --secure: what runs on these ports
    assert status.returncode == 0, status.stdout
    lines = status.stdout.splitlines()
    assert len(lines) == 2 and all("pid " in line and " answering " in line for line in lines), status.stdout
    assert lines[0].startswith("kafka (SASL_SSL)") and lines[1].startswith("redis (TLS)")

    down = _cli(private_env, "local", "down")
    assert down.returncode == 0, down.stdout
    assert down.stdout.strip() == "stopped: kafka (SASL_SSL), redis (TLS)"
    assert not any(_listening(port) for port in _ports(private_env))
    assert _cli(private_env, "local", "status").returncode == 3


def test_run_stops_only_what_it_started(private_env: dict[str, str]) -> None:
    probe = [*STREAM_APP, "local", "status"]
    started = _cli(private_env, "local", "run", "--", *probe)
    assert started.returncode == 0, started.stdout + started.stderr  # the command saw the stack answering
    assert "started: redis, kafka" in started.stdout
    assert "stopped what this run started: kafka, redis" in started.stdout
    assert _cli(private_env, "local", "status").returncode == 3

    assert _cli(private_env, "local", "up").returncode == 0
    kept = _cli(private_env, "local", "run", "--", sys.executable, "-c", "raise SystemExit(5)")
    assert kept.returncode == 5  # the command's own status
    assert "the local stack was running: it is left running" in kept.stdout
    assert _cli(private_env, "local", "status").returncode == 0
    assert all(_listening(port) for port in _ports(private_env))
