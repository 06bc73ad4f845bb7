"""Who gets in: the right password with the CA, every SASL mechanism, client certificates; who does not, and why.

Each refusal must name its cause (the credentials, the certificate) and the key to fix, both from
the Python API and from `stream-app config check` as an operator runs it.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from secure_fixtures import SecureStack

from stream_app.clients.exceptions import KafkaAccessError
from stream_app.clients.faust_options import faust_broker_options
from stream_app.clients.kafka_probe import check_kafka_access
from stream_app.config.secrets import Secret
from stream_app.config.settings import KafkaSettings
from stream_app.local.secure_material import CLIENT_KEY
from stream_app.local.tls_material import TlsFiles, ensure_tls_files


@pytest.fixture(scope="module")
def foreign_ca(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """Certificates from a CA the secure stack has never heard of."""
    folder = tmp_path_factory.mktemp("foreign")
    (folder / "ks").write_text("ks")
    (folder / "ck").write_text("foreign-key-pw")
    return ensure_tls_files(
        folder / "tls", ["127.0.0.1"], keystore_password_file=folder / "ks", client_key_password_file=folder / "ck"
    )


def _kafka(secure_stack: SecureStack, **values: object) -> KafkaSettings:
    return dataclasses.replace(secure_stack.settings.kafka, **values)  # type: ignore[arg-type]


def _config_check(secure_stack: SecureStack, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "stream_app.cli.main", "-c", str(secure_stack.client_config)]
    return subprocess.run(
        [*command, "config", "check", "--timeout", "20"],
        env={**_base_env(), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("STREAM_APP_")}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_every_mechanism_gets_in_with_the_right_password(secure_stack: SecureStack, mechanism: str) -> None:
    assert check_kafka_access(_kafka(secure_stack, sasl_mechanism=mechanism), timeout=20) == 1


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_faust_credentials_get_in_through_aiokafka(secure_stack: SecureStack, mechanism: str) -> None:
    kafka = _kafka(secure_stack, sasl_mechanism=mechanism)
    auth = credentials_to_aiokafka_auth(faust_broker_options(kafka)["broker_credentials"])
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers, request_timeout_ms=20000, **auth)
    await admin.start()
    try:
        assert kafka.input_topic in await admin.list_topics()
    finally:
        await admin.close()


def test_a_wrong_password_is_refused_naming_the_credentials(secure_stack: SecureStack) -> None:
    with pytest.raises(KafkaAccessError, match=r"refused the credentials of user 'stream-app' \(SCRAM-SHA-512\)"):
        check_kafka_access(_kafka(secure_stack, password=Secret("not-the-password")), timeout=20)


def test_a_client_without_the_ca_is_refused_naming_the_certificate(secure_stack: SecureStack) -> None:
    with pytest.raises(KafkaAccessError, match=r"not signed by a trusted CA; set kafka\.ssl_ca_file"):
        check_kafka_access(_kafka(secure_stack, ssl_ca_file=""), timeout=20)


def test_plaintext_to_the_sasl_ssl_listener_is_refused(secure_stack: SecureStack) -> None:
    plain = _kafka(secure_stack, security_protocol="PLAINTEXT", username="", password=Secret(), ssl_ca_file="")
    with pytest.raises(KafkaAccessError):
        check_kafka_access(plain, timeout=5)


def test_a_client_certificate_is_presented_and_verified(secure_stack: SecureStack, foreign_ca: TlsFiles) -> None:
    tls, material = secure_stack.material.tls, secure_stack.material
    ours = _kafka(
        secure_stack,
        ssl_cert_file=str(tls.client_cert),
        ssl_key_file=str(tls.client_key),
        ssl_key_password=Secret(material.password(CLIENT_KEY)),
    )
    assert check_kafka_access(ours, timeout=20) == 1
    theirs = _kafka(
        secure_stack,
        ssl_cert_file=str(foreign_ca.client_cert),
        ssl_key_file=str(foreign_ca.client_key),
        ssl_key_password=Secret("foreign-key-pw"),
    )
    with pytest.raises(KafkaAccessError, match=r"refused this client's TLS certificate"):  # the broker checks it
        check_kafka_access(theirs, timeout=20)


def test_config_check_says_what_works(secure_stack: SecureStack) -> None:
    result = _config_check(secure_stack, {})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kafka: ok, 1 broker(s)" in result.stdout and "SCRAM-SHA-512 as 'stream-app'" in result.stdout
    assert "redis: ok at rediss://" in result.stdout


def test_config_check_names_a_wrong_password(secure_stack: SecureStack, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    env = {"STREAM_APP_KAFKA__PASSWORD_FILE": str(wrong), "STREAM_APP_CACHING__REDIS_PASSWORD_FILE": str(wrong)}
    result = _config_check(secure_stack, env)
    assert result.returncode == 1
    assert "kafka: FAILED: " in result.stderr and "refused the credentials of user 'stream-app'" in result.stderr
    assert "redis: FAILED: " in result.stderr and "caching.redis_password" in result.stderr
    assert "not-the-password" not in result.stdout + result.stderr


def test_config_check_names_a_missing_ca(secure_stack: SecureStack, tmp_path: Path) -> None:
    overlay = tmp_path / "no-ca.toml"
    text = secure_stack.client_config.read_text()
    overlay.write_text("\n".join(line for line in text.splitlines() if "ssl_ca_file" not in line) + "\n")
    command = [sys.executable, "-m", "stream_app.cli.main", "-c", str(overlay), "config", "check", "--timeout", "20"]
    result = subprocess.run(command, env=_base_env(), capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1
    assert "set kafka.ssl_ca_file to the CA that signed it" in result.stderr
    assert "set caching.redis_ssl_ca_file to the CA that signed it" in result.stderr


def test_a_recorder_with_a_wrong_password_stops_at_once_naming_the_credentials(
    secure_stack: SecureStack, jfk_path: Path
) -> None:
    import time

    from stream_app.clients.kafka_config import producer_config
    from stream_app.clients.publisher import AccessRefused, ChunkPublisher, DeliveryLimits

    kafka = _kafka(secure_stack, password=Secret("not-the-password"))
    started = time.monotonic()
    with (
        pytest.raises(AccessRefused, match="password"),
        ChunkPublisher(producer_config(kafka), kafka.input_topic, limits=DeliveryLimits(delivery_timeout=120.0)) as pub,
    ):
        pub.publish_file(jfk_path, "refused", chunk_ms=100)
    assert time.monotonic() - started < 60  # not the 120 s delivery timeout
