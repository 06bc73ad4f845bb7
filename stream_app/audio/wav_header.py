"""A WAV header read from the front of a byte stream (what `arecord` writes to a pipe), no seeking.

A recorder's WAV on a pipe says nothing about its length (``arecord`` writes 0x7FFFFFFF or 0), so
only the format chunk matters: after the header the bytes are plain PCM, sent as they arrive.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RIFF_HEAD = 12  # "RIFF", size, "WAVE"
_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


@dataclass(frozen=True)
class WavFormat:
    """What the header says: the encoding stream-app can send as is (None when it cannot), rate, channels."""

    encoding: str | None  # "s16le", "f32le", or None for another sample format
    sample_rate: int
    channels: int


def is_wav(head: bytes) -> bool:
    """Whether the first 12 bytes are a RIFF/WAVE header."""
    return len(head) >= RIFF_HEAD and head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def parse_chunk_header(raw: bytes) -> tuple[bytes, int]:
    """Return a RIFF chunk's id and size from its 8-byte header."""
    ident, size = struct.unpack("<4sI", raw)
    return ident, size


def parse_format(body: bytes) -> WavFormat:
    """Read the ``fmt `` chunk's body.

    Raises:
        ValueError: the body is too short to be a format chunk.
    """
    if len(body) < 16:
        raise ValueError(f"a WAV format chunk of {len(body)} bytes; at least 16 expected")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == _EXTENSIBLE and len(body) >= 26:
        tag = struct.unpack("<H", body[24:26])[0]  # the first two bytes of the sub-format GUID
    encoding = None
    if tag == _PCM and bits == 16:
        encoding = "s16le"
    elif tag == _FLOAT and bits == 32:
        encoding = "f32le"
    return WavFormat(encoding, rate, channels)
