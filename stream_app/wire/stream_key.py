"""The stream key: a secret a recorder sends with every chunk of its stream, so nobody else can write to it.

A writer of the input topic can name any stream id. Without a key, a chunk of someone else's stream id
with an end of stream ended that stream (its recorder's later chunks refused as ``after_end``), and any
chunk added audio to it. A recorder sends a random key (`new_stream_key`) in the ``ce_streamkey``
header of every chunk; the worker keeps only its digest with the stream's state and its ended marker,
and refuses a chunk of that stream with another key, or none, as ``wrong_stream_key`` (the stream goes
on untouched). The key never leaves the worker: dead letters drop the header, and the changelogs hold
the digest alone. A stream whose first chunk carried no key is open to every writer, as before keys.
Whoever may *read* the input topic sees the keys: grant recorders write access only (see
docs/operations.md).
"""

from __future__ import annotations

import hashlib
import secrets

H_STREAM_KEY = "ce_streamkey"
MAX_KEY = 256  # characters


def new_stream_key() -> str:
    """Return a fresh random key (192 bits, URL-safe text)."""
    return secrets.token_urlsafe(24)


def key_digest(key: str | None) -> str:
    """Return what the worker stores of a key: a SHA-256 digest (hex, 128 bits); "" for no key."""
    if not key:
        return ""
    return hashlib.sha256(b"stream-app stream key\x00" + key.encode("utf-8")).hexdigest()[:32]


def check_stream_key(key: str) -> None:
    """Raise ValueError for a key the decoder refuses: empty, over 256 characters, or not printable ASCII."""
    if not 0 < len(key) <= MAX_KEY or not key.isascii() or not key.isprintable() or " " in key:
        raise ValueError(f"a stream key is 1 to {MAX_KEY} printable ASCII characters without spaces")
