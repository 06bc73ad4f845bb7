"""L3: Redis shared by every replica, behind short socket timeouts and a circuit breaker.

A slow or absent Redis must cost a look-up a few milliseconds at most, never an error: failures
open the breaker, and while it is open the tier answers without touching the network.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from stream_app.cache.breaker import CircuitBreaker
from stream_app.cache.exceptions import TierUnavailableError

KEY_PREFIX = "stream-app:transcript:"

_T = TypeVar("_T")


class RedisTier:
    """Entries in Redis under ``stream-app:transcript:<key>`` with a TTL and a value size limit."""

    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        ttl: float,
        timeout: float,
        max_value_size: int,
        breaker: CircuitBreaker,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        """Connect lazily to ``url``; ``options`` carries credentials and TLS files (see `redis_connection_options`)."""
        self._ttl_ms = max(1, round(ttl * 1000))
        self._max_value_size = max_value_size
        self.breaker = breaker
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # the breaker decides about retries, not the client
            retry_on_timeout=False,
            health_check_interval=0,
            **(options or {}),
        )

    def get(self, key: str) -> bytes | None:
        """Return the entry, or None when absent.

        Raises:
            TierUnavailableError: when the breaker is open (no network call was made).
            redis.RedisError: when Redis failed or timed out (the breaker counted it).
        """
        try:
            value = self._call(lambda: self._client.get(KEY_PREFIX + key))
        except redis.ResponseError as exc:
            if "WRONGTYPE" in str(exc):  # not an entry of ours: it would fail every look-up of this key
                self._call(lambda: self._client.delete(KEY_PREFIX + key))
            raise
        if value is None:
            return None
        if not isinstance(value, bytes):
            raise TypeError(f"redis returned {type(value).__name__}, expected bytes")
        return value

    def set(self, key: str, value: bytes) -> bool:
        """Store the entry with the TTL unless it is larger than the value size limit."""
        if len(value) > self._max_value_size:
            return False
        self._call(lambda: self._client.set(KEY_PREFIX + key, value, px=self._ttl_ms))
        return True

    def delete(self, key: str) -> None:
        """Remove the entry if present."""
        self._call(lambda: self._client.delete(KEY_PREFIX + key))

    def bytes_held(self) -> int | None:
        """Redis reports memory for the whole server, not for our keys, so this tier does not say."""
        return None

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _call(self, operation: Callable[[], _T]) -> _T:
        if not self.breaker.allow():
            raise TierUnavailableError("redis circuit breaker is open")
        try:
            result = operation()
        except redis.ResponseError:
            # the server answered (a key of another type, a full Redis refusing writes): this entry fails,
            # not Redis, so the breaker does not open for every other key
            self.breaker.record_success()
            raise
        except (redis.RedisError, OSError):
            self.breaker.record_failure()
            raise
        self.breaker.record_success()
        return result
