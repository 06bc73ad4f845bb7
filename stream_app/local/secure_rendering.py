"""Text of the secure local stack's server configuration (pure): the broker's SASL_SSL listener and redis.conf.

Kafka: one ``SASL_SSL`` listener for clients and for the broker itself (SCRAM-SHA-256/512 users
created at format time, PLAIN users in the listener's JAAS line), TLS from a PKCS12 keystore,
client certificates verified when presented; the KRaft controller listener stays PLAINTEXT on
loopback. Redis: TLS only (``port 0``), the default user with its own password, and an ACL user
for the service limited to ``stream-app:*`` keys and no dangerous commands.
"""

from __future__ import annotations

from collections.abc import Mapping

from stream_app.local.endpoints import StackLayout
from stream_app.local.tls_material import TlsFiles

LISTENER = "SASL_SSL"
SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
REDIS_KEY_PATTERN = "stream-app:*"


def secure_broker_properties(
    layout: StackLayout,
    tls: TlsFiles,
    *,
    keystore_password: str,
    broker_user: str,
    broker_password: str,
    plain_users: Mapping[str, str],
) -> dict[str, str]:
    """Return the settings that turn the local broker's client listener into SASL_SSL.

    ``plain_users`` (name to password) may log in with SASL/PLAIN; SCRAM users live in the
    metadata log (`scram_format_args`).
    """
    listeners = f"{LISTENER}://{layout.kafka},CONTROLLER://{layout.controller}"
    scram = f'{SCRAM_MODULE} required username="{broker_user}" password="{broker_password}";'
    logins = {broker_user: broker_password, **plain_users}
    users = " ".join(f'user_{name}="{password}"' for name, password in logins.items())
    plain = f'{PLAIN_MODULE} required username="{broker_user}" password="{broker_password}" {users};'
    prefix = f"listener.name.{LISTENER.lower()}"
    return {
        "listeners": listeners,
        "advertised.listeners": listeners,
        "listener.security.protocol.map": f"{LISTENER}:{LISTENER},CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": LISTENER,
        "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        f"{prefix}.scram-sha-256.sasl.jaas.config": scram,
        f"{prefix}.scram-sha-512.sasl.jaas.config": scram,
        f"{prefix}.plain.sasl.jaas.config": plain,
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(tls.server_keystore),
        "ssl.keystore.password": keystore_password,
        "ssl.key.password": keystore_password,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls.ca_cert),
        f"{prefix}.ssl.client.auth": "requested",  # client certificates are verified when presented
        "ssl.endpoint.identification.algorithm": "https",
    }


def scram_format_args(users: Mapping[str, str], mechanisms: tuple[str, ...]) -> list[str]:
    """Return ``kafka-storage format`` arguments that create each SCRAM user for each mechanism."""
    return [
        arg
        for name, password in users.items()
        for mechanism in mechanisms
        for arg in ("--add-scram", f"{mechanism}=[name={name},password={password}]")
    ]


def redis_tls_config(layout: StackLayout, tls: TlsFiles, *, admin_password: str, user: str, user_password: str) -> str:
    """Return ``redis.conf`` for a TLS-only Redis with a password for the default user and an ACL user."""
    lines = [
        "# Written by `stream-app local up --secure`; regenerated on every start. It holds passwords: owner-only.",
        f"bind {layout.redis.host}",
        "port 0",
        f"tls-port {layout.redis.port}",
        f'tls-cert-file "{tls.server_cert}"',
        f'tls-key-file "{tls.server_key}"',
        f'tls-ca-cert-file "{tls.ca_cert}"',
        "tls-auth-clients optional",
        'save ""',
        "appendonly no",
        "daemonize no",
        'logfile ""',
        f'dir "{layout.redis_dir}"',
        f"user default on >{admin_password} ~* &* +@all",
        f"user {user} on >{user_password} ~{REDIS_KEY_PATTERN} resetchannels +@all -@dangerous",
    ]
    return "\n".join(lines) + "\n"
