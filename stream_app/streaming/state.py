"""Compact stored state of a stream's buffer and merger (the values of the worker's RocksDB tables).

Layout of a buffer state: ``b"SB"``, a version byte, a big-endian ``uint32`` header length, an orjson
header (counters, the window grid, the pending chunks' metadata), then raw little-endian PCM: the
buffered audio followed by each pending chunk's samples. PCM is float32 (exact) or int16 (half the
size; exact for audio that arrived as 16-bit PCM at 16 kHz). A merger state is ``b"SM"``, a version
byte and a small orjson document: it holds only a few words, never audio.

Buffer state version 2 stores the next window's start (windows cut at pauses are off any grid) and
the latest speech level; a version 1 state, stored before pause cuts, still loads and resumes on its
fixed grid, so streams in flight survive an upgrade.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import orjson

from stream_app.inference.types import Word
from stream_app.streaming.exceptions import StateDecodeError
from stream_app.streaming.windowing import WindowingConfig

PcmEncoding = Literal["f32", "s16"]

_BUFFER_MAGIC = b"SB"
_MERGER_MAGIC = b"SM"
_BUFFER_VERSION = 2  # 2: the next window's start and the speech level are stored, windows cut at pauses
_BUFFER_VERSIONS = (1, 2)  # a version 1 state (fixed grid) resumes on its grid: no pause cuts
_MERGER_VERSION = 1
_PREFIX = struct.Struct(">2sBI")
_INT16_SCALE = 32768.0


def _empty_audio() -> npt.NDArray[np.float32]:
    return np.zeros(0, dtype=np.float32)


@dataclass
class PendingChunk:
    """An out-of-order chunk held until the sequence numbers before it arrive."""

    offset: int
    samples: npt.NDArray[np.float32]
    end_of_stream: bool = False


@dataclass
class BufferState:
    """Everything a `StreamBuffer` needs to resume, in stream samples.

    ``audio`` holds samples ``[base, stream_end)`` of the buffer's timeline; ``shift`` is the recorder's
    offset minus that timeline (stream time skipped by capped gaps). ``next_start`` is the first sample
    of window ``next_window`` (windows cut at pauses are not on a grid); ``speech_level`` is the
    speech level of the latest full window, against which a last window is judged silent.
    """

    config: WindowingConfig
    next_seq: int = 0
    stream_end: int = 0
    base: int = 0
    shift: int = 0
    next_window: int = 0
    next_start: int = 0
    speech_level: float = 0.0
    last_interim_end: int = 0
    seen_until: int = 0  # end of the last final window handed out
    ended: bool = False
    finished: bool = False
    audio: npt.NDArray[np.float32] = field(default_factory=_empty_audio)
    pending: dict[int, PendingChunk] = field(default_factory=dict)


@dataclass
class MergerState:
    """Everything a `SegmentMerger` needs to resume: counters, the committed tail, the open hypothesis."""

    stream_id: str
    next_index: int = 0
    revision: int = 0
    next_window: int = 0
    committed_until: float = 0.0
    tail: list[str] = field(default_factory=list)
    hypothesis: list[Word] = field(default_factory=list)
    interim_text: str = ""
    ended: bool = False
    model: str = ""  # of the latest transcript, for the empty final segment of a window with no audio
    precision: str = ""


def _encode_pcm(samples: npt.NDArray[np.float32], encoding: PcmEncoding) -> bytes:
    if encoding == "f32":
        return samples.astype("<f4", copy=False).tobytes()
    scaled = np.clip(np.rint(samples.astype(np.float64) * _INT16_SCALE), -32768, 32767)
    return scaled.astype("<i2").tobytes()


def _decode_pcm(data: memoryview, count: int, encoding: str) -> tuple[npt.NDArray[np.float32], int]:
    width = 4 if encoding == "f32" else 2
    size = count * width
    if len(data) < size:
        raise StateDecodeError("buffer state is truncated: fewer PCM bytes than its header declares")
    if encoding == "f32":
        out = np.frombuffer(data[:size], dtype="<f4").astype(np.float32)
    else:
        out = (np.frombuffer(data[:size], dtype="<i2").astype(np.float32) / np.float32(_INT16_SCALE)).astype(np.float32)
    return out, size


def encode_buffer_state(state: BufferState, encoding: PcmEncoding = "f32") -> bytes:
    """Serialise a buffer's state: small header plus raw PCM, never a JSON list of floats."""
    cfg = state.config
    pending = sorted(state.pending.items())
    header: dict[str, Any] = {
        "cfg": [
            cfg.window,
            cfg.overlap,
            cfg.interim,
            cfg.buffer_cap,
            cfg.max_reorder_chunks,
            cfg.max_gap_fill,
            cfg.pause_search,
            cfg.min_pause,
            cfg.pause_margin,
            cfg.pause_lead,
            cfg.pause_ratio,
            cfg.silence_floor,
        ],
        "seq": state.next_seq,
        "end": state.stream_end,
        "base": state.base,
        "shift": state.shift,
        "win": state.next_window,
        "start": state.next_start,
        "level": state.speech_level,
        "interim": state.last_interim_end,
        "seen": state.seen_until,
        "ended": state.ended,
        "finished": state.finished,
        "pcm": encoding,
        "n": int(state.audio.shape[0]),
        "pending": [[seq, p.offset, int(p.samples.shape[0]), p.end_of_stream] for seq, p in pending],
    }
    head = orjson.dumps(header)
    parts = [_PREFIX.pack(_BUFFER_MAGIC, _BUFFER_VERSION, len(head)), head, _encode_pcm(state.audio, encoding)]
    parts.extend(_encode_pcm(p.samples, encoding) for _, p in pending)
    return b"".join(parts)


def _read_prefix(data: bytes, magic: bytes, what: str, expected: tuple[int, ...]) -> tuple[int, int, int]:
    if len(data) < _PREFIX.size:
        raise StateDecodeError(f"{what} state is too short ({len(data)} bytes)")
    found, version, head_len = _PREFIX.unpack_from(data)
    if found != magic:
        raise StateDecodeError(f"not a {what} state (magic {found!r})")
    if version not in expected:
        raise StateDecodeError(f"{what} state version {version} is not supported (expected {expected[-1]})")
    return version, head_len, _PREFIX.size


def decode_buffer_state(data: bytes) -> BufferState:
    """Rebuild a buffer's state from `encode_buffer_state` output."""
    version, head_len, pos = _read_prefix(data, _BUFFER_MAGIC, "buffer", _BUFFER_VERSIONS)
    try:
        h = orjson.loads(data[pos : pos + head_len])
        config = WindowingConfig(*h["cfg"])
        if version == 1:  # stored before pause cuts: window k starts at k * hop, no pause search
            h["start"], h["level"] = h["win"] * config.hop, 0.0
        encoding = h["pcm"]
        if encoding not in ("f32", "s16"):
            raise StateDecodeError(f"unknown PCM encoding {encoding!r}")
        view = memoryview(data)[pos + head_len :]
        audio, used = _decode_pcm(view, h["n"], encoding)
        pending: dict[int, PendingChunk] = {}
        for seq, offset, count, eos in h["pending"]:
            view = view[used:]
            samples, used = _decode_pcm(view, count, encoding)
            pending[int(seq)] = PendingChunk(int(offset), samples, bool(eos))
        return BufferState(
            config=config,
            next_seq=h["seq"],
            stream_end=h["end"],
            base=h["base"],
            shift=h["shift"],
            next_window=h["win"],
            next_start=h["start"],
            speech_level=float(h["level"]),
            last_interim_end=h["interim"],
            seen_until=h["seen"],
            ended=h["ended"],
            finished=h["finished"],
            audio=audio,
            pending=pending,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, StateDecodeError):
            raise
        raise StateDecodeError(f"buffer state header is invalid: {exc}") from exc


def _word_row(word: Word) -> list[Any]:
    return [word.start, word.end, word.text, word.probability]


def encode_merger_state(state: MergerState) -> bytes:
    """Serialise a merger's state (a few words and counters)."""
    body = orjson.dumps(
        {
            "id": state.stream_id,
            "idx": state.next_index,
            "rev": state.revision,
            "win": state.next_window,
            "until": state.committed_until,
            "tail": state.tail,
            "hyp": [_word_row(w) for w in state.hypothesis],
            "interim": state.interim_text,
            "ended": state.ended,
            "model": [state.model, state.precision],
        }
    )
    return _PREFIX.pack(_MERGER_MAGIC, _MERGER_VERSION, len(body)) + body


def decode_merger_state(data: bytes) -> MergerState:
    """Rebuild a merger's state from `encode_merger_state` output."""
    _, body_len, pos = _read_prefix(data, _MERGER_MAGIC, "merger", (_MERGER_VERSION,))
    try:
        b = orjson.loads(data[pos : pos + body_len])
        return MergerState(
            stream_id=b["id"],
            next_index=b["idx"],
            revision=b["rev"],
            next_window=b["win"],
            committed_until=float(b["until"]),
            tail=[str(t) for t in b["tail"]],
            hypothesis=[Word(float(s), float(e), str(t), float(p)) for s, e, t, p in b["hyp"]],
            interim_text=b["interim"],
            ended=b["ended"],
            model=b["model"][0],
            precision=b["model"][1],
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise StateDecodeError(f"merger state is invalid: {exc}") from exc
