"""The Redis tier's credentials and TLS options come from settings, never from guesses."""

from __future__ import annotations

import dataclasses

import pytest
import redis

from stream_app.cache.factory import describe_redis_failure, redis_connection_options
from stream_app.config import Settings
from stream_app.config.secrets import Secret


def test_plain_redis_has_no_options(settings: Settings) -> None:
    assert redis_connection_options(settings.caching) == {}


def test_acl_user_and_password_without_tls(settings: Settings) -> None:
    caching = dataclasses.replace(settings.caching, redis_username="app", redis_password=Secret("pw"))
    assert redis_connection_options(caching) == {"username": "app", "password": "pw"}


def test_rediss_verifies_the_server_and_can_present_a_client_certificate(settings: Settings) -> None:
    caching = dataclasses.replace(
        settings.caching,
        l3_redis_url="rediss://127.0.0.1:6380/0",
        redis_password=Secret("pw"),
        redis_ssl_ca_file="/etc/ca.pem",
        redis_ssl_cert_file="/etc/client.pem",
        redis_ssl_key_file="/etc/client.key",
        redis_ssl_key_password=Secret("kp"),
        redis_ssl_check_hostname=False,
    )
    assert redis_connection_options(caching) == {
        "password": "pw",
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": False,
        "ssl_ca_certs": "/etc/ca.pem",
        "ssl_certfile": "/etc/client.pem",
        "ssl_keyfile": "/etc/client.key",
        "ssl_password": "kp",
    }
    # the options fit redis-py's TLS connection (nothing connects until a command runs)
    client = redis.Redis.from_url(caching.l3_redis_url, **redis_connection_options(caching))
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["ssl_ca_certs"] == "/etc/ca.pem" and kwargs["password"] == "pw"
    client.close()


@pytest.mark.parametrize(
    ("error", "password", "expected"),
    [
        (
            redis.AuthenticationError("invalid username-password pair or user is disabled."),
            "pw",
            "refused the credentials",
        ),
        (redis.ResponseError("NOAUTH Authentication required."), "", "needs a password"),
        (
            redis.AuthenticationError("HELLO must be called with the client already authenticated"),
            "",
            "needs a password",
        ),
        (redis.ConnectionError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), "", "redis_ssl_ca_file"),
        (redis.ConnectionError("certificate verify failed: IP address mismatch"), "", "does not name the host"),
        (
            redis.ConnectionError("[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca"),
            "",
            "this client's TLS certificate",
        ),
        (redis.ConnectionError("[SSL: WRONG_VERSION_NUMBER] wrong version number"), "", "speaks TLS"),
        (redis.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused."), "", "did not answer"),
    ],
)
def test_failures_are_said_in_words(settings: Settings, error: Exception, password: str, expected: str) -> None:
    caching = dataclasses.replace(
        settings.caching, l3_redis_url="rediss://127.0.0.1:6380/0", redis_password=Secret(password)
    )
    assert expected in describe_redis_failure(error, caching)


def test_the_url_in_a_failure_has_its_password_masked(settings: Settings) -> None:
    caching = dataclasses.replace(settings.caching, l3_redis_url="rediss://app:UrlPW-3@127.0.0.1:6380/0")
    message = describe_redis_failure(redis.AuthenticationError("WRONGPASS invalid username-password pair"), caching)
    assert "refused the credentials" in message and "UrlPW-3" not in message and "app:***@" in message
