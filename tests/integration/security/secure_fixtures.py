"""What the secure-stack fixture hands to the tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import redis

from stream_app.cache.factory import redis_connection_options
from stream_app.config import Settings
from stream_app.local import LocalStack
from stream_app.local.secure_material import SecureMaterial


@dataclasses.dataclass(frozen=True)
class SecureStack:
    """The running secure stack: the client's settings, its overlay file and the generated material."""

    stack: LocalStack
    settings: Settings  # the client's view: SASL_SSL, SCRAM-SHA-512, the CA, the Redis ACL user
    client_config: Path
    material: SecureMaterial

    def redis(self) -> redis.Redis:
        """A client of the TLS Redis as the service's ACL user."""
        caching = self.settings.caching
        return redis.Redis.from_url(caching.l3_redis_url, socket_timeout=5, **redis_connection_options(caching))
