"""TLS client contexts for the Python-side clients (aiokafka under faust), from configured PEM files."""

from __future__ import annotations

import ssl

from stream_app.config.settings import KafkaSettings, expand_path

# What OpenSSL reports when a server refuses the certificate a client presented (TLS alerts 42, 46, 48, 116).
CLIENT_CERTIFICATE_ALERTS = (
    "alert bad certificate",
    "alert certificate unknown",
    "alert unknown ca",
    "certificate required",
)


def client_ssl_context(
    *, ca_file: str, cert_file: str, key_file: str, key_password: str, check_hostname: bool
) -> ssl.SSLContext:
    """Return a context that verifies the server (against ``ca_file``, else the system's CAs).

    With ``check_hostname`` off the chain is still verified; only the name check is skipped.
    A client certificate is presented when ``cert_file`` and ``key_file`` are given.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(expand_path(ca_file)) if ca_file else None)
    context.check_hostname = check_hostname
    if cert_file:
        context.load_cert_chain(str(expand_path(cert_file)), str(expand_path(key_file)), password=key_password or None)
    return context


def kafka_ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    """Return the TLS context that `kafka`'s settings describe (SSL and SASL_SSL)."""
    return client_ssl_context(
        ca_file=kafka.ssl_ca_file,
        cert_file=kafka.ssl_cert_file,
        key_file=kafka.ssl_key_file,
        key_password=kafka.ssl_key_password.reveal(),
        check_hostname=kafka.ssl_check_hostname,
    )
