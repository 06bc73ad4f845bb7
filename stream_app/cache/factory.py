"""Build the cache the configuration asks for."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from stream_app.cache import metrics
from stream_app.cache.breaker import BreakerState, CircuitBreaker
from stream_app.cache.disk_tier import DiskTier
from stream_app.cache.exceptions import RedisAccessError
from stream_app.cache.memory_tier import MemoryTier
from stream_app.cache.redis_tier import RedisTier
from stream_app.cache.tier import CacheTier
from stream_app.cache.transcript_cache import TranscriptCache
from stream_app.clients.tls import CLIENT_CERTIFICATE_ALERTS
from stream_app.config.secrets import redact_url, url_password
from stream_app.config.settings import CACHE_LEVELS, CachingSettings, expand_path

log = logging.getLogger(__name__)


def build_cache(settings: CachingSettings) -> TranscriptCache:
    """Make the tiers named in ``cache_levels``, always ordered memory, disk, Redis (fastest first).

    Building never contacts Redis: an absent Redis shows up as misses and an open breaker later. An
    on-disk tier that cannot be opened (a full or read-only volume) is left out, with an error in the
    log: the worker runs slower, it does not fail to start; a damaged one is moved aside for a fresh one.
    """
    tiers: list[CacheTier] = []
    for level in CACHE_LEVELS:
        if level not in settings.cache_levels:
            continue
        if level == "memory":
            tiers.append(MemoryTier(settings.l1_size, settings.ttl))
        elif level == "disk":
            disk = open_disk_tier(expand_path(settings.l2_path), settings.l2_size, settings.ttl)
            if disk is not None:
                tiers.append(disk)
        elif level == "redis":
            tiers.append(_redis_tier(settings))
    return TranscriptCache(tiers)


def open_disk_tier(path: Path, size_limit: int, ttl: float) -> DiskTier | None:
    """Open the on-disk tier; a damaged database is moved aside and a fresh one opened, an unusable folder is None."""
    try:
        return DiskTier(path, size_limit, ttl)
    except sqlite3.OperationalError as exc:  # full, read-only, locked: not damage
        return _without_disk_tier(path, exc)
    except sqlite3.DatabaseError as exc:  # "file is not a database"
        aside = path.with_name(f"{path.name}.damaged-{int(time.time())}")
        log.error("on-disk cache at %s is damaged (%s): moved to %s, starting empty", path, exc, aside)
    except OSError as exc:
        return _without_disk_tier(path, exc)
    try:
        path.rename(aside)
        return DiskTier(path, size_limit, ttl)
    except (sqlite3.Error, OSError) as exc:
        return _without_disk_tier(path, exc)


def _without_disk_tier(path: Path, exc: BaseException) -> DiskTier | None:
    """Log why the disk tier is left out and count it; None stands for the tier."""
    log.error("on-disk cache at %s cannot be used (%s: %s): running without it", path, type(exc).__name__, exc)
    metrics.CACHE_ERRORS.labels("disk", "unavailable").inc()
    return None


def _redis_tier(settings: CachingSettings) -> RedisTier:
    gauge = metrics.CACHE_BREAKER_STATE.labels("redis")
    gauge.set(BreakerState.CLOSED)

    def on_change(state: BreakerState) -> None:
        gauge.set(state)

    breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_reset, on_change=on_change)
    return RedisTier(
        settings.l3_redis_url,
        ttl=settings.ttl,
        timeout=settings.redis_timeout,
        max_value_size=settings.max_value_size,
        breaker=breaker,
        options=redis_connection_options(settings),
    )


def redis_connection_options(settings: CachingSettings) -> dict[str, Any]:
    """Return the credentials and TLS options redis-py needs beside ``l3_redis_url``.

    The ACL user and password come from their own keys (or the URL); TLS options apply to
    ``rediss://`` URLs only, where the server's certificate is always verified (against the
    configured CA, else the system's) and, unless turned off, its host name too.
    """
    options: dict[str, Any] = {}
    if settings.redis_username:
        options["username"] = settings.redis_username
    if settings.redis_password:
        options["password"] = settings.redis_password.reveal()
    if urlsplit(settings.l3_redis_url).scheme != "rediss":
        return options
    options["ssl_cert_reqs"] = "required"
    options["ssl_check_hostname"] = settings.redis_ssl_check_hostname
    if settings.redis_ssl_ca_file:
        options["ssl_ca_certs"] = str(expand_path(settings.redis_ssl_ca_file))
    if settings.redis_ssl_cert_file:
        options["ssl_certfile"] = str(expand_path(settings.redis_ssl_cert_file))
        options["ssl_keyfile"] = str(expand_path(settings.redis_ssl_key_file))
    if settings.redis_ssl_key_password:
        options["ssl_password"] = settings.redis_ssl_key_password.reveal()
    return options


def check_redis_access(settings: CachingSettings, timeout: float = 5.0) -> None:
    """PING the configured Redis with its credentials and TLS options.

    Raises:
        RedisAccessError: naming the cause (refused credentials, untrusted certificate, no answer)
            and the key to fix; the URL in the message has its password masked.
    """
    client = redis.Redis.from_url(
        settings.l3_redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        **redis_connection_options(settings),
    )
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        raise RedisAccessError(describe_redis_failure(exc, settings)) from exc
    finally:
        client.close()


# Redis's words for a refused login; redis-py 6+ opens with HELLO, refused as "HELLO must be called ...".
_AUTH_MARKS = ("wrongpass", "noauth", "hello must be called with the client already authenticated")


def describe_redis_failure(exc: BaseException, settings: CachingSettings) -> str:
    """Say in words why Redis refused or did not answer, naming the configuration key to look at."""
    where = f"Redis at {redact_url(settings.l3_redis_url)}"
    text = str(exc)
    lowered = text.lower()
    auth = isinstance(exc, redis.AuthenticationError) or any(mark in lowered for mark in _AUTH_MARKS)
    if auth and not (settings.redis_password or url_password(settings.l3_redis_url)):
        return f"{where} needs a password: set caching.redis_password or redis_password_file [{text}]"
    if auth:
        return (
            f"{where} refused the credentials: wrong user name or password; check caching.redis_username and "
            f"caching.redis_password / redis_password_file [{text}]"
        )
    if any(alert in lowered for alert in CLIENT_CERTIFICATE_ALERTS):
        return (
            f"{where} refused this client's TLS certificate: present one signed by a CA the server trusts "
            f"(caching.redis_ssl_cert_file, redis_ssl_key_file) [{text}]"
        )
    if "certificate verify failed" in lowered:
        if "mismatch" in lowered:
            return f"TLS to {where} failed: its certificate does not name the host connected to [{text}]"
        return (
            f"TLS to {where} failed: the server's certificate is not signed by a trusted CA; set "
            f"caching.redis_ssl_ca_file to the CA that signed it [{text}]"
        )
    if "ssl" in lowered or "tls" in lowered:
        hint = "check caching.redis_ssl_* and that the server speaks TLS"
        if settings.redis_ssl_cert_file:  # TLS 1.3: a refused client certificate shows up as the server hanging up
            hint += "; a server that does not accept caching.redis_ssl_cert_file closes the connection like this"
        return f"TLS to {where} failed: {text} ({hint})"
    return f"{where} did not answer: {type(exc).__name__}: {text}"
