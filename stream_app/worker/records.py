"""The byte layout of a stream's state in the worker's tables (pure: no faust, no I/O).

Table ``streams``, key = the stream id (UTF-8), value = one of:

* a **header** ``b"SH"``: version byte, CRC-32 of the rest, a ``uint32`` length, an orjson document
  (the buffer's cursor and counters, the window rule, the merger's state, which audio pages and held
  chunks the stream needs with the CRC-32 of each, the window attempt count) and then the *tail*:
  the float32 samples after the last whole page. Everything about a stream but its whole pages sits
  in this one record, so it is written atomically; it stays small (the tail is under one page).
* an **ended marker** ``b"SE"``: version, CRC-32, orjson (last sequence number, where the timeline
  ended, the session): a finished stream's late chunks are recognised and a resumed stream continues
  the timeline in a new session.
* a **fenced marker** ``b"SF"``: left by a restore that found only a replaced owner's late write for
  the stream (`stream_app.worker.fencing`); reading it reports the stream's state as lost.

Table ``audio``, keys ``<stream id> 0x00 <session> 0x00 <page: uint64>`` for a page of
``PAGE_SAMPLES`` samples (a ``uint64`` stream position of its first sample, then float32 samples up to
the page's end) and ``<stream id> 0x01 <session> 0x00 <seq: uint64>`` for an out-of-order chunk held
for a hole to fill. A page's samples never change once it is full, and the session in the key keeps
a new session from reading an old one's pages. The header names the CRC of the part of each page it
needs, so a restored stream whose pages are missing, stale or damaged is detected, never transcribed
from garbage. Stream ids are printable (the chunk codec refuses control characters), so the 0x00 and
0x01 separators cannot occur inside one.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from stream_app.inference.types import Word
from stream_app.streaming.state import MergerState
from stream_app.streaming.windowing import WindowingConfig
from stream_app.worker.exceptions import StateCorrupt

PAGE_SAMPLES = 16_000  # one second of 16 kHz audio per page record (64 kB of float32)
HEADER_MAGIC = b"SH"
ENDED_MAGIC = b"SE"
FENCED_MAGIC = b"SF"  # left by a restore where only a replaced owner's late write was found
VERSION = 1
_HEAD = struct.Struct(">2sBI")  # magic, version, CRC-32 of the body (a uint32 length, the document, the payload)
_U64 = struct.Struct(">Q")
# Fields are only ever appended: a header from an earlier release carries a prefix of this list and the
# fields it lacks take their defaults (the behaviour that release had), so a rolling upgrade keeps streams.
_CONFIG_FIELDS = (
    "window",
    "overlap",
    "interim",
    "buffer_cap",
    "max_reorder_chunks",
    "max_gap_fill",
    "pause_search",
    "min_pause",
    "pause_margin",
    "pause_lead",
    "pause_ratio",
    "silence_floor",
    "max_held",
    "left_context",
    "utterance_pause",
    "min_utterance",
    "interim_min",
    "preview_from_commit",
)


@dataclass(frozen=True)
class HeldRef:
    """An out-of-order chunk the header expects in the audio table."""

    seq: int
    offset: int
    count: int
    end_of_stream: bool
    crc: int


@dataclass
class StreamHeader:
    """Everything about a live stream but its whole audio pages and held chunks.

    ``attempts`` is not stored here but in a small attempt marker next to the audio (written before
    each window is run, so a window that kills the process is counted).
    """

    session: str
    config: WindowingConfig
    cursor: dict[str, Any]  # the buffer's scalars: seq, shift, win, start, level, interim, seen, flags
    base: int  # first sample the stream still needs
    tail_start: int  # first sample kept in the header (a page boundary or ``base``)
    tail: npt.NDArray[np.float32]
    page_crcs: dict[int, int]  # page number -> CRC-32 of the part of it at or after ``base``
    held: list[HeldRef]
    merger: MergerState
    version: int = 0  # counts the header's writes; an attempt marker names the version it started from
    origin_ms: int = 0  # wall-clock ms at which stream position 0 reached the broker
    shown_until: float = 0.0  # stream time up to which words have been published
    # -- delivery bookkeeping (appended; a header from an earlier release reads the defaults) --
    record_ms: int = 0  # broker timestamp of the newest input record applied (idle ends follow record time)
    epoch: int = 0  # owner epoch of the partition's writer (stream_app.worker.fencing)
    input_offset: int = -1  # the newest input offset applied to the stream (-1: not known)

    @property
    def end(self) -> int:
        """Stream position just after the last sample."""
        return self.tail_start + int(self.tail.shape[0])


@dataclass(frozen=True)
class EndedMarker:
    """What is left of a finished stream for a while: enough to recognise and to resume it."""

    last_seq: int
    end: int  # timeline position where the stream ended
    shift: int
    session: str
    ended_ms: int  # wall-clock ms when it ended (the marker expires after the retention)
    origin_ms: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# ---- keys ---------------------------------------------------------------------------------------


def page_key(stream_id: str, session: str, page: int) -> bytes:
    """Key of one audio page."""
    return stream_id.encode() + b"\x00" + session.encode() + b"\x00" + _U64.pack(page)


def held_key(stream_id: str, session: str, seq: int) -> bytes:
    """Key of one held (out-of-order) chunk."""
    return stream_id.encode() + b"\x01" + session.encode() + b"\x00" + _U64.pack(seq)


def attempt_key(stream_id: str, session: str) -> bytes:
    """Key of the attempt marker: how often windows were started on the stored header's cursor."""
    return stream_id.encode() + b"\x02" + session.encode()


def encode_attempt(version: int, attempts: int) -> bytes:
    """Encode an attempt marker: the header version the attempts started from, and their count."""
    return _U64.pack(version) + _U64.pack(attempts)


def decode_attempt(data: bytes) -> tuple[int, int]:
    """Read an attempt marker.

    Raises:
        StateCorrupt: not 16 bytes.
    """
    if len(data) != 2 * _U64.size:
        raise StateCorrupt(f"attempt marker of {len(data)} bytes")
    return _U64.unpack_from(data)[0], _U64.unpack_from(data, _U64.size)[0]


def page_span(page: int) -> tuple[int, int]:
    """Stream positions ``[start, stop)`` a page covers."""
    return page * PAGE_SAMPLES, (page + 1) * PAGE_SAMPLES


def crc(samples: npt.NDArray[np.float32]) -> int:
    """CRC-32 of samples as stored (little-endian float32)."""
    return zlib.crc32(np.ascontiguousarray(samples, dtype="<f4").tobytes())


# ---- pages and held chunks ------------------------------------------------------------------------


def encode_samples(start: int, samples: npt.NDArray[np.float32]) -> bytes:
    """Encode a page or held chunk value: its first stream position, then float32 samples."""
    return _U64.pack(start) + np.ascontiguousarray(samples, dtype="<f4").tobytes()


def decode_samples(data: bytes) -> tuple[int, npt.NDArray[np.float32]]:
    """Read a page or held chunk value.

    Raises:
        StateCorrupt: too short, or not a whole number of samples.
    """
    if len(data) < _U64.size or (len(data) - _U64.size) % 4:
        raise StateCorrupt(f"audio record of {len(data)} bytes is not a position and float32 samples")
    (start,) = _U64.unpack_from(data)
    return int(start), np.frombuffer(data, dtype="<f4", offset=_U64.size).astype(np.float32)


# ---- headers and markers -------------------------------------------------------------------------


def encode_header(header: StreamHeader) -> bytes:
    """Serialise a stream header (see the module docstring)."""
    cfg = header.config
    document = orjson.dumps(
        {
            "session": header.session,
            "cfg": [getattr(cfg, name) for name in _CONFIG_FIELDS],
            "cur": header.cursor,
            "base": header.base,
            "tail": header.tail_start,
            "pages": sorted([page, value] for page, value in header.page_crcs.items()),
            "held": [[h.seq, h.offset, h.count, h.end_of_stream, h.crc] for h in header.held],
            "merger": merger_to_doc(header.merger),
            "version": header.version,
            "origin": header.origin_ms,
            "shown": header.shown_until,
            "record": header.record_ms,
            "epoch": header.epoch,
            "input": header.input_offset,
        }
    )
    return _frame(HEADER_MAGIC, document, np.ascontiguousarray(header.tail, dtype="<f4").tobytes())


def merger_to_doc(m: MergerState) -> dict[str, Any]:
    """Return the merger's state as a JSON-ready document (a few words and counters)."""
    return {
        "id": m.stream_id,
        "session": m.session,
        "idx": m.next_index,
        "rev": m.revision,
        "win": m.next_window,
        "until": m.committed_until,
        "tail": m.tail,
        "hyp": [[w.start, w.end, w.text, w.probability] for w in m.hypothesis],
        "interim": m.interim_text,
        "prompt": m.prompt_text,
        "ended": m.ended,
        "model": [m.model, m.precision],
    }


def merger_from_doc(m: Any) -> MergerState:
    """Read a merger document written by `merger_to_doc`.

    Raises:
        KeyError, TypeError, ValueError: the document is not one (the caller reports corruption).
    """
    return MergerState(
        stream_id=_str(m["id"]),
        session=_str(m["session"]),
        next_index=_int(m["idx"]),
        revision=_int(m["rev"]),
        next_window=_int(m["win"]),
        committed_until=_num(m["until"]),
        tail=[_str(t) for t in m["tail"]],
        hypothesis=[Word(_num(s), _num(e), _str(t), _num(p)) for s, e, t, p in m["hyp"]],
        interim_text=_str(m["interim"]),
        prompt_text=_str(m["prompt"]),
        ended=bool(m["ended"]),
        model=_str(m["model"][0]),
        precision=_str(m["model"][1]),
    )


def encode_marker(marker: EndedMarker) -> bytes:
    """Serialise an ended marker."""
    document = orjson.dumps(
        {
            "seq": marker.last_seq,
            "end": marker.end,
            "shift": marker.shift,
            "session": marker.session,
            "at": marker.ended_ms,
            "origin": marker.origin_ms,
        }
    )
    return _frame(ENDED_MAGIC, document, b"")


def encode_fenced(epoch: int, fence: int) -> bytes:
    """Serialise the marker a restore leaves where a stream's only record was a replaced owner's late write."""
    return _frame(FENCED_MAGIC, orjson.dumps({"epoch": epoch, "fence": fence}), b"")


def decode_stream_record(data: bytes) -> StreamHeader | EndedMarker:
    """Read a ``streams`` table value.

    Raises:
        StateCorrupt: not ours, truncated, damaged (CRC), of another version, or inconsistent, or a
            fenced marker (the stream's state was lost to a replaced owner's late write).
    """
    magic, document, rest = _unframe(data)
    if magic == FENCED_MAGIC:
        raise StateCorrupt(
            f"only a late write of a replaced owner (epoch {document.get('epoch')}, after the fence of epoch "
            f"{document.get('fence')}) was found"
        )
    try:
        if magic == ENDED_MAGIC:
            return _marker(document)
        return _header(document, rest)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        if isinstance(exc, StateCorrupt):
            raise
        raise StateCorrupt(f"stream record is inconsistent: {type(exc).__name__}: {exc}") from None


def _frame(magic: bytes, document: bytes, payload: bytes) -> bytes:
    body = struct.pack(">I", len(document)) + document + payload
    return _HEAD.pack(magic, VERSION, zlib.crc32(body)) + body


def _unframe(data: bytes) -> tuple[bytes, Any, bytes]:
    head = _HEAD
    if len(data) < head.size + 4:
        raise StateCorrupt(f"stream record of {len(data)} bytes is too short")
    magic, version, checksum = head.unpack_from(data)
    if magic not in (HEADER_MAGIC, ENDED_MAGIC, FENCED_MAGIC):
        raise StateCorrupt(f"not a stream record (magic {magic!r})")
    if version != VERSION:
        raise StateCorrupt(f"stream record version {version} is not supported (expected {VERSION})")
    body = data[head.size :]
    if zlib.crc32(body) != checksum:
        raise StateCorrupt("stream record fails its CRC-32")
    (length,) = struct.unpack_from(">I", body)
    if length > len(body) - 4:
        raise StateCorrupt("stream record is truncated")
    try:
        document = orjson.loads(body[4 : 4 + length])
    except orjson.JSONDecodeError as exc:
        raise StateCorrupt(f"stream record document is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise StateCorrupt("stream record document is not an object")
    return bytes(magic), document, body[4 + length :]


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not a whole number")
    return value


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return value


def _marker(d: dict[str, Any]) -> EndedMarker:
    return EndedMarker(
        last_seq=_int(d["seq"]),
        end=_int(d["end"]),
        shift=_int(d["shift"]),
        session=_str(d["session"]),
        ended_ms=_int(d["at"]),
        origin_ms=_int(d["origin"]),
    )


def _header(d: dict[str, Any], payload: bytes) -> StreamHeader:
    if len(payload) % 4:
        raise StateCorrupt("stream header tail is not whole float32 samples")
    tail = np.frombuffer(payload, dtype="<f4").astype(np.float32)
    cfg_values = d["cfg"]
    if not isinstance(cfg_values, list) or not 0 < len(cfg_values) <= len(_CONFIG_FIELDS):
        raise ValueError("window rule has the wrong number of fields")
    config = WindowingConfig(**dict(zip(_CONFIG_FIELDS, cfg_values, strict=False)))
    cursor = d["cur"]
    if not isinstance(cursor, dict):
        raise ValueError("cursor is not an object")
    merger = merger_from_doc(d["merger"])
    header = StreamHeader(
        session=_str(d["session"]),
        config=config,
        cursor=cursor,
        base=_int(d["base"]),
        tail_start=_int(d["tail"]),
        tail=tail,
        page_crcs={_int(page): _int(value) for page, value in d["pages"]},
        held=[HeldRef(_int(s), _int(o), _int(n), bool(e), _int(c)) for s, o, n, e, c in d["held"]],
        merger=merger,
        version=_int(d["version"]),
        origin_ms=_int(d["origin"]),
        shown_until=_num(d["shown"]),
        record_ms=_int(d.get("record", 0)),
        epoch=_int(d.get("epoch", 0)),
        input_offset=_int(d.get("input", -1)),
    )
    if not header.base <= header.tail_start or header.tail_start - header.base > 2**40:
        raise ValueError(f"base {header.base} lies after the tail's start {header.tail_start}")
    return header
