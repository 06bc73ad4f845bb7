"""Every Kafka client gets the same security: librdkafka properties, faust's credentials, refusals in words."""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path

import faust
import pytest
from confluent_kafka import KafkaError
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from stream_app.clients.faust_options import faust_broker_options, faust_web_options
from stream_app.clients.kafka_config import admin_config, consumer_config, producer_config, security_config
from stream_app.clients.kafka_errors import KafkaAccessWatch, describe_access_error
from stream_app.clients.tls import client_ssl_context
from stream_app.config import Settings
from stream_app.config.secrets import Secret
from stream_app.config.settings import KafkaSettings
from stream_app.local.tls_material import TlsFiles, ensure_tls_files


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    folder = tmp_path_factory.mktemp("tls")
    (folder / "ks").write_text("keystore-pw")
    (folder / "ck").write_text("client-key-pw")
    return ensure_tls_files(
        folder / "files", ["127.0.0.1"], keystore_password_file=folder / "ks", client_key_password_file=folder / "ck"
    )


def _kafka(settings: Settings, **values: object) -> KafkaSettings:
    return dataclasses.replace(settings.kafka, **values)  # type: ignore[arg-type]


def test_plaintext_has_nothing_but_the_protocol(settings: Settings) -> None:
    assert security_config(settings.kafka) == {"security.protocol": "PLAINTEXT"}
    assert faust_broker_options(settings.kafka) == {}


def test_sasl_ssl_properties_for_librdkafka(settings: Settings, tls: TlsFiles) -> None:
    kafka = _kafka(
        settings,
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",
        username="app",
        password=Secret("pw-1"),
        ssl_ca_file=str(tls.ca_cert),
        ssl_cert_file=str(tls.client_cert),
        ssl_key_file=str(tls.client_key),
        ssl_key_password=Secret("client-key-pw"),
    )
    assert security_config(kafka) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "app",
        "sasl.password": "pw-1",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": str(tls.ca_cert),
        "ssl.certificate.location": str(tls.client_cert),
        "ssl.key.location": str(tls.client_key),
        "ssl.key.password": "client-key-pw",
    }
    for conf in (producer_config(kafka), consumer_config(kafka), admin_config(kafka)):
        assert conf["sasl.password"] == "pw-1" and conf["ssl.ca.location"] == str(tls.ca_cert)
        assert isinstance(conf["error_cb"], KafkaAccessWatch)


def test_hostname_verification_can_be_turned_off_but_not_the_chain(settings: Settings) -> None:
    kafka = _kafka(settings, security_protocol="SSL", ssl_check_hostname=False)
    assert security_config(kafka) == {"security.protocol": "SSL", "ssl.endpoint.identification.algorithm": "none"}
    context = client_ssl_context(ca_file="", cert_file="", key_file="", key_password="", check_hostname=False)
    assert context.verify_mode == ssl.CERT_REQUIRED and not context.check_hostname


def test_sasl_plaintext_has_no_tls(settings: Settings) -> None:
    kafka = _kafka(settings, security_protocol="SASL_PLAINTEXT", username="app", password=Secret("pw"))
    conf = security_config(kafka)
    assert conf["sasl.mechanism"] == "PLAIN" and not any(k.startswith("ssl.") for k in conf)
    auth = credentials_to_aiokafka_auth(faust_broker_options(kafka)["broker_credentials"])
    assert auth["security_protocol"] == "SASL_PLAINTEXT" and auth["ssl_context"] is None
    assert (auth["sasl_mechanism"], auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("PLAIN", "app", "pw")


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_faust_gets_the_same_sasl_ssl_login(settings: Settings, tls: TlsFiles, mechanism: str) -> None:
    kafka = _kafka(
        settings,
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,
        username="app",
        password=Secret("pw"),
        ssl_ca_file=str(tls.ca_cert),
        ssl_cert_file=str(tls.client_cert),
        ssl_key_file=str(tls.client_key),
        ssl_key_password=Secret("client-key-pw"),
    )
    credentials = faust_broker_options(kafka)["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert "pw" not in repr(credentials)
    auth = credentials_to_aiokafka_auth(credentials)
    assert (auth["security_protocol"], auth["sasl_mechanism"]) == ("SASL_SSL", mechanism)
    context = auth["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


def test_faust_ssl_only(settings: Settings, tls: TlsFiles) -> None:
    kafka = _kafka(settings, security_protocol="SSL", ssl_ca_file=str(tls.ca_cert))
    auth = credentials_to_aiokafka_auth(faust_broker_options(kafka)["broker_credentials"])
    assert auth["security_protocol"] == "SSL" and isinstance(auth["ssl_context"], ssl.SSLContext)


def test_a_wrong_client_key_password_fails_when_the_context_is_made(tls: TlsFiles) -> None:
    with pytest.raises(ssl.SSLError):
        client_ssl_context(
            ca_file=str(tls.ca_cert),
            cert_file=str(tls.client_cert),
            key_file=str(tls.client_key),
            key_password="wrong",
            check_hostname=True,
        )


def test_faust_web_server_is_off_and_bound_to_the_configured_host(settings: Settings) -> None:
    options = faust_web_options(settings.worker)
    assert options["web_enabled"] is False
    assert options["web_bind"] == options["web_host"] == "127.0.0.1"
    assert not any(options[k] for k in ("web_tables_enabled", "web_stats_enabled", "web_graph_enabled"))
    enabled = faust_web_options(dataclasses.replace(settings.worker, web_enabled=True, web_host="10.0.0.5"))
    assert enabled["web_enabled"] and enabled["web_bind"] == "10.0.0.5" and not enabled["web_tables_enabled"]
    app = faust.App("t-web", **options)
    assert not app.conf.web_enabled and not app.conf.web_tables_enabled and app.conf.web_bind == "127.0.0.1"


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        (
            KafkaError._AUTHENTICATION,
            "sasl_ssl://h:1/bootstrap: SASL authentication error: Authentication failed during authentication "
            "due to invalid credentials with SASL mechanism SCRAM-SHA-512",
            "refused the credentials of user 'app'",
        ),
        (
            KafkaError._SSL,
            "ssl://h:1/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: "
            "broker certificate could not be verified",
            "set kafka.ssl_ca_file",
        ),
        (
            KafkaError._SSL,
            "SSL handshake failed: certificate verify failed: Hostname mismatch",
            "does not name the host",
        ),
        (KafkaError._SSL, "SSL handshake failed: unexpected eof", "TLS to Kafka at"),
        (
            KafkaError._TRANSPORT,
            "Receive failed: error:0A000416:SSL routines::ssl/tls alert certificate unknown: SSL alert number 46",
            "refused this client's TLS certificate",
        ),
        (
            KafkaError._TRANSPORT,
            "Disconnected while requesting ApiVersion: might be caused by incorrect security.protocol configuration",
            "does not speak kafka.security_protocol",
        ),
        (KafkaError.UNSUPPORTED_SASL_MECHANISM, "Unsupported SASL mechanism", "does not enable SASL mechanism"),
    ],
)
def test_refusals_are_said_in_words(settings: Settings, code: int, text: str, expected: str) -> None:
    kafka = _kafka(settings, username="app", sasl_mechanism="SCRAM-SHA-512")
    described = describe_access_error(KafkaError(code, text), kafka)
    assert described is not None and expected in described


def test_other_errors_are_not_access_problems(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    watch = KafkaAccessWatch(settings.kafka)
    watch(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    assert watch.problem is None
    refused = KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error: Authentication failed")
    with caplog.at_level("ERROR", logger="stream_app.clients.kafka"):
        watch(refused)
        watch(refused)
    assert watch.problem is not None and caplog.text.count("refused the credentials") == 1  # logged once


def test_tls_files_are_made_once_and_private(tls: TlsFiles, tmp_path: Path) -> None:
    stamp = tls.server_cert.stat().st_mtime_ns
    again = ensure_tls_files(
        tls.folder,
        ["127.0.0.1"],
        keystore_password_file=tls.folder.parent / "ks",
        client_key_password_file=tls.folder.parent / "ck",
    )
    assert again.server_cert.stat().st_mtime_ns == stamp
    for private in (tls.ca_key, tls.server_key, tls.client_key, tls.server_keystore):
        assert private.stat().st_mode & 0o077 == 0, private
    assert tls.client_key.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    context = client_ssl_context(
        ca_file=str(tls.ca_cert),
        cert_file=str(tls.client_cert),
        key_file=str(tls.client_key),
        key_password="client-key-pw",
        check_hostname=True,
    )
    assert context.verify_mode == ssl.CERT_REQUIRED
