"""The secure stack as a user drives it: `local up --secure` again, `local status` and `demo` through the overlay."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from secure_fixtures import SecureStack

from stream_app.testing.service import free_port
from stream_app.testing.wer import word_error_rate


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


def test_demo_through_the_overlay(secure_stack: SecureStack, tmp_path: Path, jfk_reference: str) -> None:
    env = {
        "STREAM_APP_WORKER__DATA_DIR": str(tmp_path / "state"),
        "STREAM_APP_CACHING__L2_PATH": str(tmp_path / "l2"),
        "STREAM_APP_CACHING__REDIS_TIMEOUT": "2s",
        "STREAM_APP_METRICS__PORT": str(free_port()),
        "STREAM_APP_WORKER__WEB_PORT": str(free_port()),
    }
    result = _cli("-c", str(secure_stack.client_config), "demo", "--fast", env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    final = [line for line in result.stdout.splitlines() if line.startswith("[demo] final transcript:")]
    assert final, result.stdout
    assert word_error_rate(jfk_reference, final[0].split(":", 1)[1]) <= 0.10, final[0]
    assert f"Kafka {secure_stack.settings.kafka.bootstrap_servers}" in result.stdout
