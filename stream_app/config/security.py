"""Rules that span several security keys of Kafka and Redis, checked when the configuration loads.

A key that would be silently ignored (a CA file on a PLAINTEXT connection, a SASL user without SASL)
is an error too: an operator who set it meant something, and a quiet fallback to an insecure
connection is the worst outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from stream_app.config.exceptions import ConfigError
from stream_app.config.secrets import redact_url
from stream_app.config.settings import CachingSettings, KafkaSettings, expand_path

REDIS_SCHEMES = ("redis", "rediss", "unix")


def check_kafka_security(kafka: KafkaSettings) -> None:
    """Check that the Kafka security keys agree with ``security_protocol``.

    Raises:
        ConfigError: naming the key that is missing, unused or points at no file.
    """
    protocol = kafka.security_protocol
    sasl, tls = protocol.startswith("SASL_"), protocol.endswith("SSL")
    if sasl:
        if not kafka.username:
            raise ConfigError("kafka.username", "", f"{protocol} needs a SASL user name")
        if not kafka.password:
            raise ConfigError("kafka.password", "", f"{protocol} needs a password (kafka.password or password_file)")
    else:
        for key in ("username", "password"):
            if getattr(kafka, key):
                raise ConfigError(
                    f"kafka.{key}", "***" if key == "password" else kafka.username,
                    f"only used with SASL_PLAINTEXT or SASL_SSL, but security_protocol is {protocol}",
                )  # fmt: skip
    tls_keys = TlsKeys("kafka", "ssl_", kafka.ssl_ca_file, kafka.ssl_cert_file, kafka.ssl_key_file)
    tls_keys.check(enabled=tls, key_password=bool(kafka.ssl_key_password), why_not=f"security_protocol is {protocol}")


def check_redis_security(caching: CachingSettings) -> None:
    """Check the Redis URL and that the Redis credential and TLS keys agree with it.

    Raises:
        ConfigError: naming the key; a URL is shown with its password masked.
    """
    url = caching.l3_redis_url
    try:
        parts = urlsplit(url)
        url_user, url_password = parts.username, parts.password
    except ValueError:
        raise ConfigError("caching.l3_redis_url", redact_url(url), "not a valid URL") from None
    if parts.scheme not in REDIS_SCHEMES:
        schemes = ", ".join(REDIS_SCHEMES)
        raise ConfigError("caching.l3_redis_url", redact_url(url), f"the scheme must be one of {schemes}")
    if url_password and caching.redis_password:
        raise ConfigError("caching.redis_password", "***", "the URL holds a password too: give it once")
    if url_user and caching.redis_username:
        raise ConfigError("caching.redis_username", caching.redis_username, "the URL names a user too: give it once")
    tls_keys = TlsKeys(
        "caching", "redis_ssl_", caching.redis_ssl_ca_file, caching.redis_ssl_cert_file, caching.redis_ssl_key_file
    )
    tls = parts.scheme == "rediss"
    tls_keys.check(
        enabled=tls, key_password=bool(caching.redis_ssl_key_password), why_not="l3_redis_url is not rediss://"
    )


@dataclass(frozen=True)
class TlsKeys:
    """The CA, client certificate and key file keys of one section (``<section>.<prefix>ca_file`` ...)."""

    section: str
    prefix: str
    ca_file: str
    cert_file: str
    key_file: str

    def name(self, key: str) -> str:
        """Full key name, e.g. ``kafka.ssl_ca_file``."""
        return f"{self.section}.{self.prefix}{key}"

    def check(self, *, enabled: bool, key_password: bool, why_not: str) -> None:
        """Check that the files are used only with TLS, come as a certificate-key pair, and exist.

        The CA is optional: without it the system's trust store verifies the server.
        """
        files = {"ca_file": self.ca_file, "cert_file": self.cert_file, "key_file": self.key_file}
        given = [key for key, path in files.items() if path]
        if not enabled:
            if given:
                raise ConfigError(self.name(given[0]), files[given[0]], f"only used with TLS, but {why_not}")
            if key_password:
                raise ConfigError(self.name("key_password"), "***", f"only used with TLS, but {why_not}")
            return
        if bool(self.cert_file) != bool(self.key_file):
            missing = "key_file" if self.cert_file else "cert_file"
            raise ConfigError(self.name(missing), "", "a client certificate needs both the certificate and its key")
        if key_password and not self.key_file:
            raise ConfigError(self.name("key_password"), "***", f"set without {self.name('key_file')}")
        for key in given:
            if not expand_path(files[key]).is_file():
                raise ConfigError(self.name(key), files[key], "file not found")
