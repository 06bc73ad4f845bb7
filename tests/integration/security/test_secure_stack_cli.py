"""`stream-app local up --secure` on a running secure stack: idempotent, prints the overlay; status through it."""

from __future__ import annotations

import os
import subprocess
import sys

from secure_fixtures import SecureStack


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_APP_")}
    command = [sys.executable, "-m", "stream_app.cli.main", *args]
    full_env = {**base, **(env or {})}
    return subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=300, check=False)


def test_up_secure_again_prints_the_client_configuration(secure_stack: SecureStack) -> None:
    layout = secure_stack.stack.layout
    env = {
        "STREAM_APP_LOCAL__HOME": str(layout.home),
        "STREAM_APP_KAFKA__BOOTSTRAP_SERVERS": str(layout.kafka),
        "STREAM_APP_KAFKA__CONTROLLER_PORT": str(layout.controller.port),
        "STREAM_APP_LOCAL__REDIS_PORT": str(layout.redis.port),
    }
    stamp = secure_stack.client_config.stat().st_mtime_ns
    result = _cli("local", "up", "--secure", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"client configuration: {secure_stack.client_config}" in result.stdout
    assert "started" not in result.stderr  # both were running: nothing restarted
    assert secure_stack.client_config.stat().st_mtime_ns >= stamp
    assert _cli("local", "status", "--secure", env=env).returncode == 0


def test_status_through_the_overlay(secure_stack: SecureStack) -> None:
    result = _cli("-c", str(secure_stack.client_config), "local", "status")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all("answering" in line and "not answering" not in line for line in lines)
    assert "-sasl/kafka.log" in lines[0] and "-tls/redis.log" in lines[1]
