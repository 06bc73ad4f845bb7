"""Audio chunks on the wire: CloudEvents Kafka binding, binary mode (schemas/audio-chunk.v1.json).

key = stream id (UTF-8), value = raw interleaved PCM, metadata in headers: ``ce_specversion``,
``ce_id``, ``ce_source``, ``ce_type``, ``ce_time``, ``content-type`` and the extensions ``ce_seq``
(per-stream sequence number from 0), ``ce_streamoffset`` (position of the first sample, in samples
at the chunk's own rate) and ``ce_endofstream``. The decoder trusts nothing: every field is checked
and any failure is a :class:`ChunkRejected` with a stable reason code, never another exception.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from stream_app.audio.pcm import SAMPLE_BYTES, pcm_chunk_to_model_input
from stream_app.wire.chunk import AudioChunk, ChunkFormat
from stream_app.wire.content_type import format_content_type, parse_content_type
from stream_app.wire.exceptions import ChunkRejected
from stream_app.wire.headers import HeadersLike, headers_to_dict
from stream_app.wire.stream_key import H_STREAM_KEY, check_stream_key, key_digest

SPEC_VERSION = "1.0"
CHUNK_EVENT_TYPE = "dev.stream-app.audio.chunk"
MAX_STREAM_ID_LENGTH = 256
MAX_POSITION = 2**63 - 1  # a Kafka-friendly int64; anything larger is not a stream position

H_SPECVERSION = "ce_specversion"
H_ID = "ce_id"
H_SOURCE = "ce_source"
H_TYPE = "ce_type"
H_TIME = "ce_time"
H_CONTENT_TYPE = "content-type"
H_SEQ = "ce_seq"
H_OFFSET = "ce_streamoffset"
H_END_OF_STREAM = "ce_endofstream"

REQUIRED_HEADERS = (H_SPECVERSION, H_ID, H_SOURCE, H_TYPE, H_CONTENT_TYPE, H_SEQ, H_OFFSET)
_KNOWN = {*REQUIRED_HEADERS, H_TIME, H_END_OF_STREAM, H_STREAM_KEY}
_NUMBER = re.compile(r"0|[1-9][0-9]{0,18}")
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def encode_chunk(
    stream_id: str,
    seq: int,
    offset: int,
    pcm_bytes: bytes,
    fmt: ChunkFormat,
    end_of_stream: bool,
    source: str,
    event_id: str | None = None,
    time: datetime | None = None,
    stream_key: str | None = None,
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Build one chunk record.

    Args:
        stream_id: the stream the chunk belongs to (the record key, so a stream stays on one partition).
        seq: per-stream sequence number, 0 for the first chunk.
        offset: stream position of the first sample, in samples at ``fmt.sample_rate``.
        pcm_bytes: interleaved little-endian PCM in ``fmt``.
        fmt: encoding, rate and channel count of ``pcm_bytes``.
        end_of_stream: True on the stream's last chunk.
        source: CloudEvents source, a URI-reference naming the recorder.
        event_id: CloudEvents id; a random UUID when not given.
        time: when the audio was captured; now when not given.
        stream_key: the stream's key (`stream_app.wire.stream_key`), the same on every chunk of the stream.

    Returns:
        ``(key, value, headers)`` ready for ``Producer.produce``.

    Raises:
        ValueError: the arguments would make a chunk the decoder rejects.
    """
    check_stream_id(stream_id)
    if stream_key is not None:
        check_stream_key(stream_key)
    if not 0 <= seq <= MAX_POSITION or not 0 <= offset <= MAX_POSITION:
        raise ValueError(f"seq ({seq}) and offset ({offset}) must be non-negative int64 values")
    frame_bytes = SAMPLE_BYTES[fmt.encoding] * fmt.channels
    if len(pcm_bytes) % frame_bytes:
        raise ValueError(f"{len(pcm_bytes)} bytes is not a whole number of {frame_bytes}-byte frames")
    when = (time or datetime.now(UTC)).astimezone(UTC)
    headers = [
        (H_SPECVERSION, SPEC_VERSION.encode()),
        (H_ID, (event_id or str(uuid.uuid4())).encode()),
        (H_SOURCE, source.encode()),
        (H_TYPE, CHUNK_EVENT_TYPE.encode()),
        (H_TIME, when.isoformat(timespec="milliseconds").replace("+00:00", "Z").encode()),
        (H_CONTENT_TYPE, format_content_type(fmt).encode()),
        (H_SEQ, str(seq).encode()),
        (H_OFFSET, str(offset).encode()),
        (H_END_OF_STREAM, b"true" if end_of_stream else b"false"),
    ]
    if stream_key is not None:
        headers.append((H_STREAM_KEY, stream_key.encode()))
    return stream_id.encode("utf-8"), bytes(pcm_bytes), headers


def decode_chunk(key: bytes | None, value: bytes | None, headers: HeadersLike, *, max_bytes: int) -> AudioChunk:
    """Validate one chunk record and convert its audio to 16 kHz mono float32.

    Args:
        key: the record key (the stream id).
        value: the raw PCM.
        headers: the record headers, in any client's shape.
        max_bytes: the largest PCM payload accepted.

    Returns:
        The chunk, its ``offset`` in 16 kHz samples.

    Raises:
        ChunkRejected: anything about the record is wrong; ``reason`` says what.
    """
    stream_id = _stream_id(key)
    payload = b"" if value is None else bytes(value)
    if len(payload) > max_bytes:
        raise ChunkRejected("oversized", f"{len(payload)} bytes of PCM; the limit is {max_bytes}")
    fields = headers_to_dict(headers, only=_is_chunk_header)
    missing = [name for name in REQUIRED_HEADERS if name not in fields]
    if missing:
        raise ChunkRejected("missing_header", f"missing {', '.join(missing)}")
    if fields[H_SPECVERSION] != SPEC_VERSION:
        raise ChunkRejected("bad_specversion", f"ce_specversion {fields[H_SPECVERSION]!r}; expected '1.0'")
    for name in (H_ID, H_SOURCE, H_TYPE):
        if not fields[name]:
            raise ChunkRejected("bad_header", f"{name} is empty")
    fmt = parse_content_type(fields[H_CONTENT_TYPE])
    seq = _position(fields[H_SEQ], "bad_seq", H_SEQ)
    offset = _position(fields[H_OFFSET], "bad_offset", H_OFFSET)
    end_of_stream = _end_of_stream(fields.get(H_END_OF_STREAM, "false"))
    produced_at_ms = _time_ms(fields[H_TIME]) if H_TIME in fields else 0
    stream_key = fields.get(H_STREAM_KEY)
    if stream_key is not None:
        try:
            check_stream_key(stream_key)
        except ValueError as exc:
            raise ChunkRejected("bad_header", f"{H_STREAM_KEY}: {exc}") from None
    frame_bytes = SAMPLE_BYTES[fmt.encoding] * fmt.channels
    if len(payload) % frame_bytes:
        raise ChunkRejected(
            "misaligned_payload", f"{len(payload)} bytes is not a whole number of {frame_bytes}-byte frames"
        )
    if not payload and not end_of_stream:
        raise ChunkRejected("empty_payload", "a chunk without samples must be the end of its stream")
    if fmt.encoding == "f32le":
        _check_float_samples(np.frombuffer(payload, dtype="<f4"))
    offset16, samples = pcm_chunk_to_model_input(payload, fmt.encoding, fmt.sample_rate, fmt.channels, offset)
    extra = {name[3:]: val for name, val in fields.items() if name.startswith("ce_") and name not in _KNOWN}
    return AudioChunk(
        stream_id=stream_id,
        seq=seq,
        offset=offset16,
        samples=samples,
        end_of_stream=end_of_stream,
        event_id=fields[H_ID],
        source=fields[H_SOURCE],
        event_type=fields[H_TYPE],
        produced_at_ms=produced_at_ms,
        source_format=fmt,
        extra=extra,
        key_digest=key_digest(stream_key),
    )


def _is_chunk_header(name: str) -> bool:
    return name.startswith("ce_") or name == H_CONTENT_TYPE


def check_stream_id(stream_id: str) -> None:
    """Apply the worker's stream id rules: what a recorder checks before sending, what the decoder refuses.

    Raises:
        ChunkRejected: ``empty_key`` or ``bad_stream_id`` (a ``ValueError``), the detail saying which rule.
    """
    if not stream_id:
        raise ChunkRejected("empty_key", "the stream id is empty; the record key is the stream id")
    if len(stream_id) > MAX_STREAM_ID_LENGTH:
        raise ChunkRejected(
            "bad_stream_id", f"stream id of {len(stream_id)} characters; at most {MAX_STREAM_ID_LENGTH} are taken"
        )
    if not stream_id.isprintable() or stream_id.strip() != stream_id:
        raise ChunkRejected(
            "bad_stream_id",
            f"stream id {stream_id!r} has control characters or whitespace at an end; "
            "printable characters, no leading or trailing space",
        )


def _stream_id(key: bytes | None) -> str:
    if not key:
        raise ChunkRejected("empty_key", "the record has no key; the key is the stream id")
    try:
        stream_id = bytes(key).decode("utf-8")
    except UnicodeDecodeError:
        raise ChunkRejected("bad_stream_id", "the key is not UTF-8") from None
    check_stream_id(stream_id)
    return stream_id


def _position(raw: str, reason: str, name: str) -> int:
    if not _NUMBER.fullmatch(raw):
        raise ChunkRejected(reason, f"{name}={raw!r} is not a non-negative whole number")
    number = int(raw)
    if number > MAX_POSITION:
        raise ChunkRejected(reason, f"{name}={raw} does not fit in 64 bits")
    return number


def _end_of_stream(raw: str) -> bool:
    if raw not in ("true", "false"):
        raise ChunkRejected("bad_end_of_stream", f"ce_endofstream={raw!r}; expected 'true' or 'false'")
    return raw == "true"


def _time_ms(raw: str) -> int:
    if not _RFC3339.fullmatch(raw):
        raise ChunkRejected("bad_time", f"ce_time={raw!r} is not an RFC 3339 timestamp")
    try:
        when = datetime.fromisoformat(raw.upper())
    except ValueError:
        raise ChunkRejected("bad_time", f"ce_time={raw!r} is not a valid date and time") from None
    return int(when.timestamp() * 1000)


F32_LIMIT = 1000.0  # full scale is 1.0: 60 dB above it is a recorder's bug (int16 values sent as floats), not audio


def _check_float_samples(samples: npt.NDArray[np.float32]) -> None:
    """Refuse float samples that are not numbers, or so far past full scale that features would overflow.

    A window's log-mel of samples near 1e17 is infinite, and the whole window (the stream's good audio in it
    too) would decode to nothing.
    """
    if not np.isfinite(samples).all():
        raise ChunkRejected("non_finite_samples", "the f32le payload holds NaN or infinite samples")
    peak = float(np.abs(samples).max()) if samples.shape[0] else 0.0
    if peak > F32_LIMIT:
        raise ChunkRejected(
            "out_of_range_samples", f"an f32le sample of {peak:.3g} is past {F32_LIMIT:g} (full scale is 1.0)"
        )
