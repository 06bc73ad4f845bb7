"""The chunk's ``content-type`` header: the PCM layout as a media type with parameters.

Canonical form, what our publisher writes::

    audio/pcm; encoding=s16le; rate=44100; channels=2      (or encoding=f32le)

``audio/L16; rate=..; channels=..`` is accepted too, but note the byte order: RFC 2586 defines L16
as big-endian (network order), while every recorder we know of sends its native little-endian
samples under that name. stream-app reads ``audio/L16`` as **little-endian** signed 16-bit (s16le)
and never writes it; use ``audio/pcm; encoding=...`` to be explicit.
"""

from __future__ import annotations

from stream_app.audio.pcm import ENCODINGS
from stream_app.wire.chunk import ChunkFormat
from stream_app.wire.exceptions import ChunkRejected

MIN_RATE = 8_000
MAX_RATE = 192_000
MAX_CHANNELS = 8
_MEDIA_TYPES = ("audio/pcm", "audio/l16")


def format_content_type(fmt: ChunkFormat) -> str:
    """Write the canonical ``content-type`` of a PCM layout."""
    return f"audio/pcm; encoding={fmt.encoding}; rate={fmt.sample_rate}; channels={fmt.channels}"


def parse_content_type(value: str) -> ChunkFormat:
    """Parse and validate a chunk's ``content-type``.

    Raises:
        ChunkRejected: ``bad_content_type``, ``unsupported_encoding``, ``unsupported_rate`` or
            ``bad_channels``.
    """
    media_type, params = _split(value)
    if media_type not in _MEDIA_TYPES:
        raise ChunkRejected("bad_content_type", f"media type {media_type!r} is not audio/pcm or audio/L16")
    if media_type == "audio/l16":
        if params.get("encoding", "s16le") != "s16le":
            raise ChunkRejected("unsupported_encoding", "audio/L16 carries s16le samples only")
        encoding = "s16le"
    else:
        if "encoding" not in params:
            raise ChunkRejected("bad_content_type", "audio/pcm needs an encoding parameter")
        encoding = params["encoding"]
        if encoding not in ENCODINGS:
            raise ChunkRejected(
                "unsupported_encoding", f"encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}"
            )
    rate = _integer(params, "rate", "unsupported_rate")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ChunkRejected("unsupported_rate", f"rate {rate} Hz is outside {MIN_RATE}..{MAX_RATE}")
    channels = _integer(params, "channels", "bad_channels", default=1)
    if not 1 <= channels <= MAX_CHANNELS:
        raise ChunkRejected("bad_channels", f"{channels} channels; expected 1..{MAX_CHANNELS}")
    return ChunkFormat(encoding=encoding, sample_rate=rate, channels=channels)


def _split(value: str) -> tuple[str, dict[str, str]]:
    parts = [p.strip() for p in value.split(";")]
    media_type = parts[0].lower()
    if not media_type:
        raise ChunkRejected("bad_content_type", "empty media type")
    params: dict[str, str] = {}
    for part in parts[1:]:
        if not part:
            continue
        name, sep, raw = part.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            raise ChunkRejected("bad_content_type", f"parameter {part!r} is not name=value")
        if name in params:
            raise ChunkRejected("bad_content_type", f"parameter {name!r} given twice")
        params[name] = raw.strip().strip('"').lower()
    return media_type, params


def _integer(params: dict[str, str], name: str, reason: str, default: int | None = None) -> int:
    raw = params.get(name)
    if raw is None:
        if default is None:
            raise ChunkRejected(reason, f"content-type has no {name} parameter")
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise ChunkRejected(reason, f"{name}={raw!r} is not a whole number")
    return int(raw)
