"""Authentication and TLS refusals from Kafka, said in words that name the cause and the key to fix.

librdkafka reports a wrong password or an untrusted certificate as an error event and keeps retrying;
a client then fails much later with "timed out" or "all brokers down". `KafkaAccessWatch`, installed
as every client's ``error_cb``, logs the real cause once and keeps it for the caller's error message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError

from stream_app.clients.tls import CLIENT_CERTIFICATE_ALERTS
from stream_app.config.settings import KafkaSettings

log = logging.getLogger("stream_app.clients.kafka")

_AUTH_CODES = frozenset({KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED})


def describe_access_error(error: KafkaError, kafka: KafkaSettings) -> str | None:
    """Return a sentence naming why the broker refused this client, or None for other errors."""
    text = error.str()
    lowered = text.lower()
    where = f"Kafka at {kafka.bootstrap_servers}"
    if error.code() == KafkaError.UNSUPPORTED_SASL_MECHANISM or "unsupported sasl mechanism" in lowered:
        return f"{where} does not enable SASL mechanism {kafka.sasl_mechanism} (kafka.sasl_mechanism) [{text}]"
    if error.code() in _AUTH_CODES and "authentication" in lowered and "ssl handshake" not in lowered:
        return (
            f"{where} refused the credentials of user {kafka.username!r} ({kafka.sasl_mechanism}): authentication "
            f"failed; check kafka.username and kafka.password / kafka.password_file [{text}]"
        )
    if any(alert in lowered for alert in CLIENT_CERTIFICATE_ALERTS):
        return (
            f"{where} refused this client's TLS certificate: present one signed by a CA the broker trusts "
            f"(kafka.ssl_cert_file, kafka.ssl_key_file) [{text}]"
        )
    if "certificate verify failed" in lowered or "could not be verified" in lowered:
        if "hostname mismatch" in lowered or "ip address mismatch" in lowered:
            return (
                f"TLS to {where} failed: the broker's certificate does not name the host connected to; connect by a "
                f"name the certificate holds (kafka.ssl_check_hostname) [{text}]"
            )
        return (
            f"TLS to {where} failed: the broker's certificate is not signed by a trusted CA; set kafka.ssl_ca_file "
            f"to the CA that signed it [{text}]"
        )
    if error.code() == KafkaError._SSL or "ssl handshake failed" in lowered:
        return f"TLS to {where} failed: {text} (check kafka.ssl_* and the broker's listener)"
    if "security.protocol" in lowered:
        return (
            f"{where} does not speak kafka.security_protocol = {kafka.security_protocol}: the listener expects "
            f"another protocol [{text}]"
        )
    return None


class KafkaAccessWatch:
    """A confluent-kafka ``error_cb``: logs each distinct access refusal once and remembers the latest."""

    def __init__(self, kafka: KafkaSettings, *, log_problems: bool = True) -> None:
        self._kafka = kafka
        self._log_problems = log_problems  # off when the caller reports `problem` itself
        self._logged: set[str] = set()
        self.problem: str | None = None

    def __call__(self, error: KafkaError) -> None:
        """Handle one error event of the client."""
        problem = describe_access_error(error, self._kafka)
        if problem is None:
            log.debug("kafka client: %s", error.str())
            return
        self.problem = problem
        key = re.sub(r"\d+", "#", problem)  # "after 314ms in state ..." varies: the refusal does not
        if self._log_problems and key not in self._logged:
            self._logged.add(key)
            log.error("%s", problem)


def unreachable_message(config: Mapping[str, Any], waited: float | None = None) -> str:
    """Say that no broker answered, naming the address tried and the setting that holds it.

    ``config`` is a confluent-kafka configuration (`kafka_config`); when its access watch recorded a
    refusal (a wrong password, an untrusted certificate), that refusal is the message instead.
    """
    problem = getattr(config.get("error_cb"), "problem", None)
    if problem:
        return str(problem)
    servers = config.get("bootstrap.servers", "?")
    protocol = config.get("security.protocol", "PLAINTEXT")
    within = f" within {waited:g} s" if waited is not None else ""
    return (
        f"no Kafka broker answered at {servers} ({protocol}){within}; check kafka.bootstrap_servers "
        "(STREAM_APP_KAFKA__BOOTSTRAP_SERVERS or the -c file) and that the broker runs (stream-app local status)"
    )


class LibrdkafkaLog:
    """librdkafka's own log lines through `logging` at DEBUG: a client with no broker retries several times a second.

    Without a ``logger`` librdkafka prints every failed connection to stderr (about 20 lines a second);
    the caller reports the outcome once, in words (`unreachable_message`, `KafkaAccessWatch`).
    """

    def __init__(self) -> None:
        self._log = logging.getLogger("stream_app.clients.librdkafka")

    def log(self, level: int, message: str, *args: Any) -> None:
        """Take one log line from librdkafka."""
        self._log.debug(message, *args)
