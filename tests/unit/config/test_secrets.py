"""Secrets: from the file, the environment or a file named by ``<key>_file``; never shown."""

import io
import logging
from pathlib import Path

import pytest
from mode.utils.logging import ExtensionFormatter

from stream_app.config import ConfigError, load_settings
from stream_app.config.log_redaction import install_log_redaction, redact_record
from stream_app.config.secrets import Secret, redact_text, redact_url, url_password


def test_a_secret_never_shows_itself() -> None:
    secret = Secret("S3cretPW")
    assert str(secret) == "***" and repr(secret) == "'***'"
    assert "S3cretPW" not in f"{secret} {secret!r} {[secret]}"
    assert secret.reveal() == "S3cretPW"
    assert secret == Secret("S3cretPW") and secret != Secret("other") and hash(secret) == hash(Secret("S3cretPW"))
    assert not Secret() and str(Secret()) == ""


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rediss://app:S3cretPW@cache:6380/0", "rediss://app:***@cache:6380/0"),
        ("redis://:S3cretPW@127.0.0.1:6379", "redis://:***@127.0.0.1:6379"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://app@127.0.0.1:6379/0", "redis://app@127.0.0.1:6379/0"),
        ("redis://a:b@[::1", "***"),
    ],
)
def test_urls_lose_their_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_url_password_and_text_redaction() -> None:
    assert url_password("rediss://app:pw%40x@h:1") == "pw%40x"
    assert url_password("redis://h:1") == ""
    assert redact_text("user pw and pwlong", ["pw", "pwlong", ""]) == "user *** and ***"


def test_every_secret_can_come_from_a_file(tmp_path: Path) -> None:
    files = {}
    for name in ("kafka", "key", "redis", "redis-key"):
        files[name] = tmp_path / name
        files[name].write_text(f"{name}-pw\n")
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    env = {
        "STREAM_APP_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "STREAM_APP_KAFKA__USERNAME": "app",
        "STREAM_APP_KAFKA__PASSWORD_FILE": str(files["kafka"]),
        "STREAM_APP_KAFKA__SSL_CERT_FILE": str(ca),
        "STREAM_APP_KAFKA__SSL_KEY_FILE": str(ca),
        "STREAM_APP_KAFKA__SSL_KEY_PASSWORD_FILE": str(files["key"]),
        "STREAM_APP_CACHING__L3_REDIS_URL": "rediss://127.0.0.1:6380/0",
        "STREAM_APP_CACHING__REDIS_PASSWORD_FILE": str(files["redis"]),
        "STREAM_APP_CACHING__REDIS_SSL_CERT_FILE": str(ca),
        "STREAM_APP_CACHING__REDIS_SSL_KEY_FILE": str(ca),
        "STREAM_APP_CACHING__REDIS_SSL_KEY_PASSWORD_FILE": str(files["redis-key"]),
    }
    settings = load_settings(env=env)
    assert settings.kafka.password.reveal() == "kafka-pw"
    assert settings.kafka.ssl_key_password.reveal() == "key-pw"
    assert settings.caching.redis_password.reveal() == "redis-pw"
    assert settings.caching.redis_ssl_key_password.reveal() == "redis-key-pw"
    assert sorted(settings.secret_values()) == ["kafka-pw", "key-pw", "redis-key-pw", "redis-pw"]


def test_secrets_from_the_environment_are_taken_verbatim() -> None:
    env = {
        "STREAM_APP_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "STREAM_APP_KAFKA__USERNAME": "app",
        "STREAM_APP_KAFKA__PASSWORD": "1e3",  # TOML would read this as the number 1000.0
        "STREAM_APP_CACHING__L3_REDIS_URL": "redis://:true@127.0.0.1:6379/0",
    }
    settings = load_settings(env=env)
    assert settings.kafka.password.reveal() == "1e3"
    assert settings.caching.l3_redis_url == "redis://:true@127.0.0.1:6379/0"
    assert sorted(settings.secret_values()) == ["1e3", "true"]


def test_a_secret_given_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("a")
    env = {
        "STREAM_APP_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "STREAM_APP_KAFKA__USERNAME": "app",
        "STREAM_APP_KAFKA__PASSWORD": "b",
        "STREAM_APP_KAFKA__PASSWORD_FILE": str(tmp_path / "pw"),
    }
    with pytest.raises(ConfigError, match=r"kafka\.password_file.*give the secret once"):
        load_settings(env=env)


@pytest.mark.parametrize(("content", "reason"), [(None, "cannot read"), ("\n", "empty")])
def test_an_unreadable_or_empty_secret_file_is_refused(tmp_path: Path, content: str | None, reason: str) -> None:
    path = tmp_path / "pw"
    if content is not None:
        path.write_text(content)
    env = {"STREAM_APP_CACHING__REDIS_PASSWORD_FILE": str(path)}
    with pytest.raises(ConfigError, match=reason):
        load_settings(env=env)


def test_a_malformed_secret_is_not_echoed(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[caching]\nredis_password = 123456789\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert "123456789" not in str(info.value) and "caching.redis_password" in str(info.value)


def test_config_show_data_masks_every_secret(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("FilePW-1")
    env = {
        "STREAM_APP_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "STREAM_APP_KAFKA__USERNAME": "app",
        "STREAM_APP_KAFKA__PASSWORD_FILE": str(tmp_path / "pw"),
        "STREAM_APP_CACHING__L3_REDIS_URL": "rediss://app:UrlPW-2@cache:6380/0",
    }
    data = load_settings(env=env).to_dict()
    text = repr(data)
    assert "FilePW-1" not in text and "UrlPW-2" not in text
    assert data["kafka"]["password"] == "***" and data["kafka"]["password_file"] == str(tmp_path / "pw")
    assert data["kafka"]["ssl_key_password"] == ""
    assert data["caching"]["l3_redis_url"] == "rediss://app:***@cache:6380/0"
    assert "FilePW-1" not in repr(load_settings(env=env))


def test_log_records_never_carry_a_secret(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.secrets")
    install_log_redaction(["Hunter2-pw"])
    try:
        with caplog.at_level(logging.INFO, logger="test.secrets"):
            logger.info("connecting with %s", "Hunter2-pw")
            try:
                raise RuntimeError("refused Hunter2-pw")
            except RuntimeError:
                logger.exception("failed")
        assert "Hunter2-pw" not in caplog.text
        assert "connecting with ***" in caplog.text and "refused ***" in caplog.text
    finally:
        install_log_redaction([])


def test_a_record_with_a_bad_format_string_is_still_masked() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "pw %s %s", ("Hunter2-pw",), None)
    redact_record(record, ["Hunter2-pw"])
    assert "Hunter2-pw" not in record.getMessage()


def test_a_masked_record_is_printed_by_the_worker_logs_formatter() -> None:
    # faust's worker logs through mode's ExtensionFormatter, which turns args of None into (None,)
    record = logging.LogRecord(
        "aiokafka", logging.ERROR, __file__, 1, "connect to %s failed", ("redis://:pw1@h",), None
    )
    redact_record(record, ["pw1"])
    text = ExtensionFormatter(stream=io.StringIO(), fmt="%(message)s").format(record)
    assert text == "connect to redis://:***@h failed"


@pytest.mark.parametrize(
    "env",
    [
        {"STREAM_APP_KAFKA_PASSWORD": "Hunter-2-pw"},  # one underscore: not read, and said so
        {"STREAM_APP_KAFKAA__PASSWORD": "Hunter-2-pw"},  # an unknown section
        {"STREAM_APP_CACHING__REDIS_PASWORD": "Hunter-2-pw"},  # an unknown key
    ],
)
def test_a_misspelt_setting_is_refused_without_its_value(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(env=env)
    assert "Hunter-2-pw" not in str(refused.value)


def test_a_misspelt_key_in_the_file_is_refused_without_its_value(tmp_path: Path) -> None:
    path = tmp_path / "stream-app.toml"
    path.write_text('[kafka]\npasword = "Hunter-2-pw"\n')
    with pytest.raises(ConfigError, match=r"kafka\.pasword") as refused:
        load_settings(path, env={})
    assert "Hunter-2-pw" not in str(refused.value)
    path.write_text('[kafkaa]\npassword = "Hunter-2-pw"\n')
    with pytest.raises(ConfigError, match="unknown section") as refused:
        load_settings(path, env={})
    assert "Hunter-2-pw" not in str(refused.value)
