"""The byte layout of a stream's state in the worker's tables (pure: no faust, no I/O).

Table ``streams``, key = the stream id (UTF-8), value = one of:

* a **header** ``b"SH"``: version byte, CRC-32 of the rest, a ``uint32`` length, an orjson document
  (the buffer's cursor and counters, the live rule, the planner's position, the merger's state, the
  speech track's bookkeeping, which audio pages and held chunks the stream needs with the CRC-32 of
  each; `stream_app.worker.session_state`), then the payload: the *tail* (the float32 samples after
  the last whole page) and the speech probabilities the stream still needs. Everything about a
  stream but its whole pages sits in this one record, so it is written atomically; it stays small.
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

from stream_app.streaming.buffer import Loss
from stream_app.streaming.config import LiveConfig
from stream_app.streaming.planner import PlannerState
from stream_app.streaming.speech import SpeechTrack
from stream_app.streaming.state import MergerState
from stream_app.wire.segment import TranscriptSegment
from stream_app.wire.segment_codec import segment_from_dict, segment_to_dict
from stream_app.worker.doc_fields import as_float, as_int, as_str
from stream_app.worker.exceptions import StateCorrupt
from stream_app.worker.session_state import (
    config_from_doc,
    config_to_doc,
    losses_from_doc,
    losses_to_doc,
    merger_from_doc,
    merger_to_doc,
    planner_from_doc,
    planner_to_doc,
    rule_holds_settling,
    speech_from_doc,
    speech_to_doc,
)

PAGE_SAMPLES = 16_000  # one second of 16 kHz audio per page record (64 kB of float32)
HEADER_MAGIC = b"SH"
ENDED_MAGIC = b"SE"
FENCED_MAGIC = b"SF"  # left by a restore where only a replaced owner's late write was found
VERSION = 2  # 2: the live rule of speech tracks, planned decodes and forced prefixes (1 still reads)
_HEAD = struct.Struct(">2sBI")  # magic, version, CRC-32 of the body (a uint32 length, the document, the payload)
_U64 = struct.Struct(">Q")


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
    each decode is run, so a decode that kills the process is counted). ``config`` is None for a
    header an earlier release wrote: the stream continues under the worker's current live rule.
    """

    session: str
    config: LiveConfig | None
    buffer: dict[str, Any]  # the buffer's scalars: seq, shift, ended, resume, heard, lost
    base: int  # first sample the stream still needs
    tail_start: int  # first sample kept in the header (a page boundary or ``base``)
    tail: npt.NDArray[np.float32]
    page_crcs: dict[int, int]  # page number -> CRC-32 of the part of it at or after ``base``
    held: list[HeldRef]
    speech: SpeechTrack
    planner: PlannerState
    merger: MergerState
    losses: list[Loss] = field(default_factory=list)
    outbox: list[TranscriptSegment] = field(default_factory=list)  # segments stored before they are published
    version: int = 0  # counts the header's writes; an attempt marker names the version it started from
    origin_ms: int = 0  # wall-clock ms at which stream position 0 reached the broker
    shown_until: float = 0.0  # stream time up to which words have been published
    # -- delivery bookkeeping (appended; a header from an earlier release reads the defaults) --
    record_ms: int = 0  # broker timestamp of the newest input record applied (idle ends follow record time)
    epoch: int = 0  # owner epoch of the partition's writer (stream_app.worker.fencing)
    input_offset: int = -1  # the newest input offset applied to the stream (-1: not known)
    key_digest: str = ""  # digest of the stream's key (stream_app.wire.stream_key; "": none, or an earlier release)
    # False for a rule stored by the release that settled by its configuration without storing how
    # (be5a202): the restoring replica's `settle_after` applies, as it did then. Not stored.
    settling_stored: bool = True

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
    input_offset: int = -1  # the newest input offset the stream applied (-1: not known, an older release's marker)
    key_digest: str = ""  # the ended stream's key digest: only its recorder may resume it
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
    """Serialise a stream header (see the module docstring); the payload is the tail, then the speech probabilities."""
    if header.config is None:
        raise ValueError("a header is written with the live rule it runs under")
    document = orjson.dumps(
        {
            "session": header.session,
            "cfg": config_to_doc(header.config),
            "buf": header.buffer,
            "base": header.base,
            "tail": header.tail_start,
            "ntail": int(header.tail.shape[0]),
            "pages": sorted([page, value] for page, value in header.page_crcs.items()),
            "held": [[h.seq, h.offset, h.count, h.end_of_stream, h.crc] for h in header.held],
            "speech": speech_to_doc(header.speech),
            "plan": planner_to_doc(header.planner),
            "merger": merger_to_doc(header.merger),
            "losses": losses_to_doc(tuple(header.losses)),
            "outbox": [segment_to_dict(segment) for segment in header.outbox],
            "version": header.version,
            "origin": header.origin_ms,
            "shown": header.shown_until,
            "record": header.record_ms,
            "epoch": header.epoch,
            "input": header.input_offset,
            "key": header.key_digest,
        }
    )
    payload = np.ascontiguousarray(header.tail, dtype="<f4").tobytes()
    payload += np.ascontiguousarray(header.speech.probs, dtype="<f4").tobytes()
    return _frame(HEADER_MAGIC, document, payload)


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
            "input": marker.input_offset,
            "key": marker.key_digest,
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
    magic, version, document, rest = _unframe(data)
    if magic == FENCED_MAGIC:
        raise StateCorrupt(
            f"only a late write of a replaced owner (epoch {document.get('epoch')}, after the fence of epoch "
            f"{document.get('fence')}) was found"
        )
    try:
        if magic == ENDED_MAGIC:
            return _marker(document)
        return _header(document, rest) if version == VERSION else _header_v1(document, rest)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        if isinstance(exc, StateCorrupt):
            raise
        raise StateCorrupt(f"stream record is inconsistent: {type(exc).__name__}: {exc}") from None


def _frame(magic: bytes, document: bytes, payload: bytes) -> bytes:
    body = struct.pack(">I", len(document)) + document + payload
    return _HEAD.pack(magic, VERSION, zlib.crc32(body)) + body


def _unframe(data: bytes) -> tuple[bytes, int, Any, bytes]:
    head = _HEAD
    if len(data) < head.size + 4:
        raise StateCorrupt(f"stream record of {len(data)} bytes is too short")
    magic, version, checksum = head.unpack_from(data)
    if magic not in (HEADER_MAGIC, ENDED_MAGIC, FENCED_MAGIC):
        raise StateCorrupt(f"not a stream record (magic {magic!r})")
    if version not in (1, VERSION):
        raise StateCorrupt(f"stream record version {version} is not supported (expected {VERSION} or 1)")
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
    return bytes(magic), int(version), document, body[4 + length :]


def _marker(d: dict[str, Any]) -> EndedMarker:
    return EndedMarker(
        last_seq=as_int(d["seq"]),
        end=as_int(d["end"]),
        shift=as_int(d["shift"]),
        session=as_str(d["session"]),
        ended_ms=as_int(d["at"]),
        origin_ms=as_int(d["origin"]),
        input_offset=as_int(d.get("input", -1)),
        key_digest=as_str(d.get("key", "")),
    )


def _header(d: dict[str, Any], payload: bytes) -> StreamHeader:
    if len(payload) % 4:
        raise StateCorrupt("stream header payload is not whole float32 values")
    values = np.frombuffer(payload, dtype="<f4").astype(np.float32)
    ntail = as_int(d["ntail"])
    if not 0 <= ntail <= values.shape[0]:
        raise ValueError(f"tail of {ntail} samples in a payload of {values.shape[0]} values")
    buffer = d["buf"]
    if not isinstance(buffer, dict):
        raise ValueError("buffer cursor is not an object")
    header = StreamHeader(
        session=as_str(d["session"]),
        config=config_from_doc(d["cfg"]),
        buffer=buffer,
        base=as_int(d["base"]),
        tail_start=as_int(d["tail"]),
        tail=values[:ntail],
        page_crcs={as_int(page): as_int(value) for page, value in d["pages"]},
        held=[HeldRef(as_int(s), as_int(o), as_int(n), bool(e), as_int(c)) for s, o, n, e, c in d["held"]],
        speech=speech_from_doc(d["speech"], values[ntail:]),
        planner=planner_from_doc(d["plan"]),
        merger=merger_from_doc(d["merger"]),
        losses=losses_from_doc(d["losses"]),
        outbox=[segment_from_dict(doc) for doc in d["outbox"]],
        version=as_int(d["version"]),
        origin_ms=as_int(d["origin"]),
        shown_until=as_float(d["shown"]),
        record_ms=as_int(d.get("record", 0)),
        epoch=as_int(d.get("epoch", 0)),
        input_offset=as_int(d.get("input", -1)),
        key_digest=as_str(d.get("key", "")),
        settling_stored=rule_holds_settling(d["cfg"]),
    )
    if not header.base <= header.tail_start or header.tail_start - header.base > 2**40:
        raise ValueError(f"base {header.base} lies after the tail's start {header.tail_start}")
    return header


def _header_v1(d: dict[str, Any], payload: bytes) -> StreamHeader:
    """Read a header of the release before the live rule: its audio, sequence and segment counters carry on.

    What it had decoded but not made final is decoded again from its audio (the speech track starts at
    the audio it kept); an interim it showed still gets its final, under the same id.
    """
    if len(payload) % 4:
        raise StateCorrupt("stream header tail is not whole float32 samples")
    cursor, merger = d["cur"], d["merger"]
    base = as_int(d["base"])
    ended = bool(cursor["ended"]) or bool(cursor.get("finished", False))
    buffer = {
        "seq": as_int(cursor["seq"]),
        "shift": as_int(cursor["shift"]),
        "ended": ended,
        "resume": bool(cursor["resume"]),
        "heard": base,
        "lost": [],
    }
    header = StreamHeader(
        session=as_str(d["session"]),
        config=None,
        buffer=buffer,
        base=base,
        tail_start=as_int(d["tail"]),
        tail=np.frombuffer(payload, dtype="<f4").astype(np.float32),
        page_crcs={as_int(page): as_int(value) for page, value in d["pages"]},
        held=[HeldRef(as_int(s), as_int(o), as_int(n), bool(e), as_int(c)) for s, o, n, e, c in d["held"]],
        speech=SpeechTrack(origin=base),
        planner=PlannerState(floor=base),
        merger=MergerState(
            stream_id=as_str(merger["id"]),
            session=as_str(merger["session"]),
            next_index=as_int(merger["idx"]),
            revision=as_int(merger["rev"]),
            interim_text=as_str(merger["interim"]),
            ended=bool(merger["ended"]),
            model=as_str(merger["model"][0]),
            precision=as_str(merger["model"][1]),
        ),
        version=as_int(d["version"]),
        origin_ms=as_int(d["origin"]),
        shown_until=as_float(d["shown"]),
        record_ms=as_int(d.get("record", 0)),
        epoch=as_int(d.get("epoch", 0)),
        input_offset=as_int(d.get("input", -1)),
    )
    if not header.base <= header.tail_start:
        raise ValueError(f"base {header.base} lies after the tail's start {header.tail_start}")
    return header
