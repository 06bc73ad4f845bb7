"""`stream-app config show` as an operator runs it: every secret masked, wherever it came from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
from secure_fixtures import SecureStack

from stream_app.local.secure_material import PASSWORDS


def _show(config: Path | None, env: dict[str, str], *extra: str) -> str:
    command = [sys.executable, "-m", "stream_app.cli.main"]
    command += ["-c", str(config)] if config else []
    base = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_APP_")}
    result = subprocess.run(
        [*command, "config", "show", *extra],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_the_secure_overlay_shows_no_password(secure_stack: SecureStack) -> None:
    secrets = [secure_stack.material.password(name) for name in PASSWORDS]
    for extra in ((), ("--json",)):
        out = _show(secure_stack.client_config, {}, *extra)
        assert not [s for s in secrets if s in out]
    data = orjson.loads(_show(secure_stack.client_config, {}, "--json"))
    assert data["kafka"]["password"] == "***" and data["caching"]["redis_password"] == "***"
    assert data["kafka"]["password_file"].endswith("secrets/kafka-client")


def test_secrets_from_the_environment_and_inside_urls_are_masked(tmp_path: Path) -> None:
    pem = tmp_path / "client.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n")
    env = {
        "STREAM_APP_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "STREAM_APP_KAFKA__USERNAME": "app",
        "STREAM_APP_KAFKA__PASSWORD": "Env-Kafka-PW-1",
        "STREAM_APP_KAFKA__SSL_CERT_FILE": str(pem),
        "STREAM_APP_KAFKA__SSL_KEY_FILE": str(pem),
        "STREAM_APP_KAFKA__SSL_KEY_PASSWORD": "Env-Key-PW-2",
        "STREAM_APP_CACHING__L3_REDIS_URL": "rediss://app:Url-Redis-PW-3@cache.internal:6380/0",
        "STREAM_APP_CACHING__REDIS_SSL_CERT_FILE": str(pem),
        "STREAM_APP_CACHING__REDIS_SSL_KEY_FILE": str(pem),
        "STREAM_APP_CACHING__REDIS_SSL_KEY_PASSWORD": "Env-Redis-Key-PW-4",
    }
    for extra in ((), ("--json",)):
        out = _show(None, env, *extra)
        for secret in ("Env-Kafka-PW-1", "Env-Key-PW-2", "Url-Redis-PW-3", "Env-Redis-Key-PW-4"):
            assert secret not in out, secret
    data = orjson.loads(_show(None, env, "--json"))
    assert data["kafka"]["password"] == data["kafka"]["ssl_key_password"] == "***"
    assert data["caching"]["redis_ssl_key_password"] == "***"
    assert data["caching"]["l3_redis_url"] == "rediss://app:***@cache.internal:6380/0"
