"""Security keys of Kafka, Redis and the model roots: what each combination means and what is refused."""

from pathlib import Path

import pytest

from stream_app.config import ConfigError, load_settings


@pytest.fixture
def pem(tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return str(path)


def test_defaults_are_plaintext_and_keep_faust_web_off() -> None:
    settings = load_settings(env={})
    assert settings.kafka.security_protocol == "PLAINTEXT"
    assert settings.kafka.sasl_mechanism == "PLAIN"
    assert settings.kafka.ssl_check_hostname and settings.caching.redis_ssl_check_hostname
    assert settings.optimization.model_roots == ()
    assert settings.worker.web_enabled is False and settings.worker.web_host == "127.0.0.1"


def test_sasl_ssl_with_every_key(pem: str) -> None:
    env = {
        "STREAM_APP_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "STREAM_APP_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
        "STREAM_APP_KAFKA__USERNAME": "app",
        "STREAM_APP_KAFKA__PASSWORD": "pw",
        "STREAM_APP_KAFKA__SSL_CA_FILE": pem,
        "STREAM_APP_KAFKA__SSL_CERT_FILE": pem,
        "STREAM_APP_KAFKA__SSL_KEY_FILE": pem,
        "STREAM_APP_KAFKA__SSL_CHECK_HOSTNAME": "false",
    }
    kafka = load_settings(env=env).kafka
    assert (kafka.sasl_mechanism, kafka.username, kafka.ssl_ca_file) == ("SCRAM-SHA-512", "app", pem)
    assert kafka.ssl_check_hostname is False


@pytest.mark.parametrize(
    ("env", "key", "reason"),
    [
        ({"SECURITY_PROTOCOL": "SASL_SSL", "PASSWORD": "Pw-9x"}, "kafka.username", "needs a SASL user"),
        ({"SECURITY_PROTOCOL": "SASL_PLAINTEXT", "USERNAME": "a"}, "kafka.password", "needs a password"),
        ({"USERNAME": "a"}, "kafka.username", "only used with SASL"),
        ({"SECURITY_PROTOCOL": "SSL", "PASSWORD": "Pw-9x"}, "kafka.password", "only used with SASL"),
        ({"SSL_CA_FILE": "PEM"}, "kafka.ssl_ca_file", "only used with TLS"),
        (
            {"SECURITY_PROTOCOL": "SASL_PLAINTEXT", "USERNAME": "a", "PASSWORD": "b", "SSL_CA_FILE": "PEM"},
            "kafka.ssl_ca_file",
            "only used with TLS",
        ),
        ({"SSL_KEY_PASSWORD": "Pw-9x"}, "kafka.ssl_key_password", "only used with TLS"),
        ({"SECURITY_PROTOCOL": "SSL", "SSL_CERT_FILE": "PEM"}, "kafka.ssl_key_file", "both"),
        ({"SECURITY_PROTOCOL": "SSL", "SSL_KEY_FILE": "PEM"}, "kafka.ssl_cert_file", "both"),
        ({"SECURITY_PROTOCOL": "SSL", "SSL_KEY_PASSWORD": "Pw-9x"}, "kafka.ssl_key_password", "without"),
        ({"SECURITY_PROTOCOL": "SSL", "SSL_CA_FILE": "/no/such/ca.pem"}, "kafka.ssl_ca_file", "file not found"),
        ({"SECURITY_PROTOCOL": "TLS"}, "kafka.security_protocol", "choose one of"),
        ({"SASL_MECHANISM": "GSSAPI"}, "kafka.sasl_mechanism", "choose one of"),
    ],
)
def test_kafka_security_mistakes_name_the_key(env: dict[str, str], key: str, reason: str, pem: str) -> None:
    full = {f"STREAM_APP_KAFKA__{k}": pem if v == "PEM" else v for k, v in env.items()}
    with pytest.raises(ConfigError, match=reason) as info:
        load_settings(env=full)
    assert info.value.key == key
    assert "Pw-9x" not in str(info.value)  # a password is never echoed back


def test_redis_tls_and_acl_keys(pem: str) -> None:
    env = {
        "STREAM_APP_CACHING__L3_REDIS_URL": "rediss://127.0.0.1:6380/0",
        "STREAM_APP_CACHING__REDIS_USERNAME": "app",
        "STREAM_APP_CACHING__REDIS_PASSWORD": "pw",
        "STREAM_APP_CACHING__REDIS_SSL_CA_FILE": pem,
        "STREAM_APP_CACHING__REDIS_SSL_CERT_FILE": pem,
        "STREAM_APP_CACHING__REDIS_SSL_KEY_FILE": pem,
    }
    caching = load_settings(env=env).caching
    assert caching.redis_username == "app" and caching.redis_password.reveal() == "pw"


@pytest.mark.parametrize(
    ("env", "key", "reason"),
    [
        ({"REDIS_SSL_CA_FILE": "PEM"}, "caching.redis_ssl_ca_file", "not rediss://"),
        ({"L3_REDIS_URL": "http://x:S3cret@h"}, "caching.l3_redis_url", "scheme"),
        ({"L3_REDIS_URL": "redis://:S3cret@h", "REDIS_PASSWORD": "S3cret"}, "caching.redis_password", "once"),
        ({"L3_REDIS_URL": "redis://u@h", "REDIS_USERNAME": "u"}, "caching.redis_username", "once"),
        ({"L3_REDIS_URL": "rediss://h", "REDIS_SSL_CERT_FILE": "PEM"}, "caching.redis_ssl_key_file", "both"),
    ],
)
def test_redis_security_mistakes_name_the_key(env: dict[str, str], key: str, reason: str, pem: str) -> None:
    full = {f"STREAM_APP_CACHING__{k}": pem if v == "PEM" else v for k, v in env.items()}
    with pytest.raises(ConfigError, match=reason) as info:
        load_settings(env=full)
    assert info.value.key == key
    assert "S3cret" not in str(info.value)


def test_model_roots_are_absolute_folders(tmp_path: Path) -> None:
    env = {"STREAM_APP_OPTIMIZATION__MODEL_ROOTS": f'["{tmp_path}", "~/models"]'}
    assert load_settings(env=env).optimization.model_roots == (str(tmp_path), "~/models")
    assert load_settings(env={"STREAM_APP_OPTIMIZATION__MODEL_ROOTS": "/a,/b"}).optimization.model_roots == ("/a", "/b")


@pytest.mark.parametrize(
    ("value", "reason"), [('["models"]', "absolute"), ('["/a/../etc"]', r"'\.\.'"), ("[1]", "list")]
)
def test_bad_model_roots_are_refused(value: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        load_settings(env={"STREAM_APP_OPTIMIZATION__MODEL_ROOTS": value})
