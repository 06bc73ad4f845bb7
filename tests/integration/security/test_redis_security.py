"""The Redis tier on a real TLS-only ``redis-server`` with an ACL user and a password for the default user."""

from __future__ import annotations

import dataclasses

import pytest
import redis
from secure_fixtures import SecureStack

from stream_app.cache.breaker import CircuitBreaker
from stream_app.cache.exceptions import RedisAccessError
from stream_app.cache.factory import check_redis_access, redis_connection_options
from stream_app.cache.redis_tier import KEY_PREFIX, RedisTier
from stream_app.config.secrets import Secret
from stream_app.config.settings import CachingSettings
from stream_app.local.secure_material import CLIENT_KEY, REDIS_ADMIN
from stream_app.local.tls_material import TlsFiles, ensure_tls_files


def _caching(secure_stack: SecureStack, **values: object) -> CachingSettings:
    return dataclasses.replace(secure_stack.settings.caching, **values)  # type: ignore[arg-type]


def _tier(caching: CachingSettings) -> RedisTier:
    return RedisTier(
        caching.l3_redis_url,
        ttl=60,
        timeout=2.0,
        max_value_size=1 << 20,
        breaker=CircuitBreaker(3, 5.0),
        options=redis_connection_options(caching),
    )


def test_the_tier_round_trips_through_tls_as_the_acl_user(secure_stack: SecureStack) -> None:
    tier = _tier(secure_stack.settings.caching)
    try:
        assert tier.set("tls-roundtrip", b"entry")
        assert tier.get("tls-roundtrip") == b"entry"
        tier.delete("tls-roundtrip")
        assert tier.get("tls-roundtrip") is None
    finally:
        tier.close()


def test_the_acl_user_reaches_only_the_service_keys(secure_stack: SecureStack) -> None:
    client = secure_stack.redis()
    client.set(KEY_PREFIX + "mine", b"1")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.set("someone-else:key", b"1")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.flushall()
    client.close()


def test_a_password_alone_logs_in_as_the_default_user(secure_stack: SecureStack) -> None:
    caching = _caching(
        secure_stack,
        redis_username="",
        redis_password=Secret(secure_stack.material.password(REDIS_ADMIN)),
    )
    check_redis_access(caching)


def test_a_wrong_password_opens_the_breaker_and_is_named(secure_stack: SecureStack) -> None:
    caching = _caching(secure_stack, redis_password=Secret("not-the-password"))
    tier = _tier(caching)
    for _ in range(3):
        with pytest.raises(redis.AuthenticationError):
            tier.get("k")
    assert not tier.breaker.allow()  # later look-ups cost nothing
    tier.close()
    with pytest.raises(RedisAccessError, match="refused the credentials") as info:
        check_redis_access(caching)
    assert "not-the-password" not in str(info.value)


def test_no_password_is_refused(secure_stack: SecureStack) -> None:
    with pytest.raises(RedisAccessError, match="needs a password"):
        check_redis_access(_caching(secure_stack, redis_username="", redis_password=Secret()))


def test_without_the_ca_the_server_is_not_trusted(secure_stack: SecureStack) -> None:
    with pytest.raises(RedisAccessError, match=r"set caching\.redis_ssl_ca_file"):
        check_redis_access(_caching(secure_stack, redis_ssl_ca_file=""))


def test_plain_redis_to_a_tls_port_fails_clearly(secure_stack: SecureStack) -> None:
    url = secure_stack.settings.caching.l3_redis_url.replace("rediss://", "redis://")
    with pytest.raises(RedisAccessError, match=r"did not answer|TLS"):
        check_redis_access(_caching(secure_stack, l3_redis_url=url, redis_ssl_ca_file=""), timeout=2)


def test_client_certificates_are_verified_when_presented(
    secure_stack: SecureStack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tls, material = secure_stack.material.tls, secure_stack.material
    ours = _caching(
        secure_stack,
        redis_ssl_cert_file=str(tls.client_cert),
        redis_ssl_key_file=str(tls.client_key),
        redis_ssl_key_password=Secret(material.password(CLIENT_KEY)),
    )
    check_redis_access(ours)
    folder = tmp_path_factory.mktemp("foreign-redis")
    (folder / "ks").write_text("ks")
    (folder / "ck").write_text("fk")
    foreign: TlsFiles = ensure_tls_files(
        folder / "tls", ["127.0.0.1"], keystore_password_file=folder / "ks", client_key_password_file=folder / "ck"
    )
    theirs = _caching(
        secure_stack,
        redis_ssl_cert_file=str(foreign.client_cert),
        redis_ssl_key_file=str(foreign.client_key),
        redis_ssl_key_password=Secret("fk"),
    )
    # TLS 1.3 sends the refusal after the client's side of the handshake: the client may see only a hang-up
    with pytest.raises(RedisAccessError, match=r"refused this client's TLS certificate|redis_ssl_cert_file"):
        check_redis_access(theirs)
