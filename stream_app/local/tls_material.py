"""Certificates for the secure local stack, made with ``openssl`` once into ``<home>/tls``.

A private CA signs a server certificate (for the loopback names the brokers listen on, used by
Kafka and Redis alike) and a client certificate whose key is encrypted (to exercise key passwords
and mutual TLS). Kafka reads the server certificate from a PKCS12 keystore. Private keys are
readable by their owner only; nothing here ever passes a password on a command line.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from stream_app.local.exceptions import LocalStackError

log = logging.getLogger(__name__)

DAYS = "825"
CURVE = "prime256v1"
OPENSSL_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class TlsFiles:
    """Where the secure stack's certificates, keys and keystore live."""

    folder: Path

    @property
    def ca_cert(self) -> Path:
        """The CA certificate clients trust (PEM)."""
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        """The CA's private key."""
        return self.folder / "ca.key"

    @property
    def server_cert(self) -> Path:
        """The servers' certificate (PEM), valid for the loopback names in `hosts_marker`."""
        return self.folder / "server.pem"

    @property
    def server_key(self) -> Path:
        """The servers' private key (PEM, unencrypted: Redis reads it at start)."""
        return self.folder / "server.key"

    @property
    def server_keystore(self) -> Path:
        """The server key and certificate chain as PKCS12, for Kafka."""
        return self.folder / "server.p12"

    @property
    def client_cert(self) -> Path:
        """A client certificate signed by the CA (PEM), for mutual TLS."""
        return self.folder / "client.pem"

    @property
    def client_key(self) -> Path:
        """Its private key, encrypted with the key password (PKCS8 PEM)."""
        return self.folder / "client.key"

    @property
    def hosts_marker(self) -> Path:
        """The host names the server certificate was made for; other names mean making it again."""
        return self.folder / "hosts.txt"


def ensure_tls_files(
    folder: Path, hosts: Iterable[str], *, keystore_password_file: Path, client_key_password_file: Path
) -> TlsFiles:
    """Make the CA, server and client certificates and the keystore unless they exist for ``hosts``.

    Raises:
        LocalStackError: when ``openssl`` is missing or fails (its output is quoted).
    """
    files = TlsFiles(folder)
    names = sorted(set(hosts) | {"127.0.0.1", "localhost"})
    wanted = "\n".join(names) + "\n"
    existing = (files.ca_cert, files.server_cert, files.server_keystore, files.client_cert, files.client_key)
    marker = files.hosts_marker
    if all(p.is_file() for p in existing) and marker.is_file() and marker.read_text(encoding="utf-8") == wanted:
        return files
    openssl = shutil.which("openssl")
    if openssl is None:
        raise LocalStackError("openssl is needed for the secure local stack's certificates (apt install openssl)")
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    log.info("making the secure local stack's CA and certificates in %s", folder)
    run = _Runner(openssl, folder)
    if not (files.ca_cert.is_file() and files.ca_key.is_file()):
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", f"ec_paramgen_curve:{CURVE}", "-nodes",
            "-keyout", files.ca_key, "-out", files.ca_cert, "-days", DAYS, "-subj", "/CN=stream-app local CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    san = ",".join(f"IP:{h}" if _is_ip(h) else f"DNS:{h}" for h in names)
    _leaf(run, files, "server", files.server_cert, files.server_key, f"subjectAltName={san}\n", "serverAuth,clientAuth")
    _leaf(run, files, "client", files.client_cert, files.client_key, "", "clientAuth")
    encrypted = files.folder / "client.key.encrypted"
    run("pkcs8", "-topk8", "-in", files.client_key, "-out", encrypted, "-v2", "aes-256-cbc",
        "-passout", f"file:{client_key_password_file}")  # fmt: skip
    encrypted.replace(files.client_key)
    run("pkcs12", "-export", "-in", files.server_cert, "-inkey", files.server_key, "-certfile", files.ca_cert,
        "-name", "kafka", "-out", files.server_keystore, "-passout", f"file:{keystore_password_file}")  # fmt: skip
    for private in (files.ca_key, files.server_key, files.client_key, files.server_keystore):
        os.chmod(private, 0o600)
    marker.write_text(wanted, encoding="utf-8")
    return files


def _leaf(run: _Runner, files: TlsFiles, name: str, cert: Path, key: Path, extensions: str, usage: str) -> None:
    """Make a key and a certificate for it signed by the CA."""
    csr = files.folder / f"{name}.csr"
    ext = files.folder / f"{name}.ext"
    ext.write_text(
        f"{extensions}basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        f"extendedKeyUsage={usage}\n",
        encoding="utf-8",
    )
    run("req", "-newkey", "ec", "-pkeyopt", f"ec_paramgen_curve:{CURVE}", "-nodes", "-keyout", key,
        "-out", csr, "-subj", f"/CN=stream-app local {name}")  # fmt: skip
    run("x509", "-req", "-in", csr, "-CA", files.ca_cert, "-CAkey", files.ca_key, "-CAcreateserial",
        "-out", cert, "-days", DAYS, "-extfile", ext)  # fmt: skip
    csr.unlink()
    ext.unlink()


class _Runner:
    """Run ``openssl`` sub-commands in one folder, failing with their output."""

    def __init__(self, openssl: str, cwd: Path) -> None:
        self._openssl = openssl
        self._cwd = cwd

    def __call__(self, *args: str | Path) -> None:
        argv: Sequence[str] = [self._openssl, *(str(a) for a in args)]
        result = subprocess.run(
            argv, cwd=self._cwd, capture_output=True, text=True, timeout=OPENSSL_TIMEOUT_S, check=False
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()[-2000:]
            raise LocalStackError(f"openssl {args[0]} failed (exit {result.returncode}):\n{output}")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
