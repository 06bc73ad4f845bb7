"""What the secure local stack is made of: generated passwords and the TLS files, kept under ``local.home``.

Passwords are random, made once, one owner-only file each in ``<home>/secrets``; clients read them
through ``*_password_file`` keys, so no password is written into a configuration file a user
passes around. The TLS files come from `stream_app.local.tls_material`.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from stream_app.local.endpoints import StackLayout
from stream_app.local.tls_material import TlsFiles, ensure_tls_files

KAFKA_USER = "stream-app"  # the SASL user clients log in as
BROKER_USER = "broker"  # the SASL user the broker uses to talk to itself
REDIS_USER = "stream-app"  # the Redis ACL user clients log in as (limited to stream-app:* keys)
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
CLIENT_MECHANISM = "SCRAM-SHA-512"

# One generated password per file: <home>/secrets/<name>
KAFKA_CLIENT, KAFKA_BROKER, REDIS_CLIENT, REDIS_ADMIN = "kafka-client", "kafka-broker", "redis-client", "redis-admin"
KEYSTORE, CLIENT_KEY = "keystore", "client-key"
PASSWORDS = (KAFKA_CLIENT, KAFKA_BROKER, REDIS_CLIENT, REDIS_ADMIN, KEYSTORE, CLIENT_KEY)


@dataclass(frozen=True)
class SecureMaterial:
    """The secure stack's password files and TLS files."""

    secrets_dir: Path
    tls: TlsFiles

    def password_file(self, name: str) -> Path:
        """Return the file holding password ``name`` (one of `PASSWORDS`)."""
        return self.secrets_dir / name

    def password(self, name: str) -> str:
        """Read password ``name``."""
        return self.password_file(name).read_text(encoding="utf-8").strip()


def ensure_secure_material(layout: StackLayout) -> SecureMaterial:
    """Make the passwords and certificates that are missing; reuse what exists.

    A new keystore or client-key password means new certificates too (the old files are sealed
    with the old password).

    Raises:
        LocalStackError: when ``openssl`` is missing or fails.
    """
    folder = layout.secrets_dir
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    created = {name for name in PASSWORDS if _make_password(folder / name)}
    if created & {KEYSTORE, CLIENT_KEY} and layout.tls_dir.exists():
        shutil.rmtree(layout.tls_dir)
    tls = ensure_tls_files(
        layout.tls_dir,
        {layout.kafka.host, layout.redis.host},
        keystore_password_file=folder / KEYSTORE,
        client_key_password_file=folder / CLIENT_KEY,
    )
    return SecureMaterial(folder, tls)


def existing_secure_material(layout: StackLayout) -> SecureMaterial | None:
    """Return the material when every password and the CA exist (for `status` and `down`, which make nothing)."""
    material = SecureMaterial(layout.secrets_dir, TlsFiles(layout.tls_dir))
    present = all(material.password_file(name).is_file() for name in PASSWORDS) and material.tls.ca_cert.is_file()
    return material if present else None


def _make_password(path: Path) -> bool:
    """Write a fresh random password to ``path`` (owner-only) unless it exists; return whether it made one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_urlsafe(24))
    return True
