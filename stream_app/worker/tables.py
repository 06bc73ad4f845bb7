"""Stream state in RocksDB-backed faust tables, changelogged so another replica can resume a stream.

- ``buffers``: the stream's buffer header (counters, window position, held chunks), small.
- ``audio``: the buffered audio in pages of one second of stream time, keyed by stream id and page number.
  Audio at a stream position never changes once appended, so a chunk writes only the page it extends
  and any new ones, and pages no window needs any more are deleted. This keeps every record far below
  Kafka's message limit (a 30 s window of float32 is 1.9 MB) and the changelog traffic proportional to
  the audio that arrives, instead of rewriting the whole buffer on every chunk.
- ``mergers``: the transcript state (a few words). A finished stream leaves a small marker here until
  its idle tick removes it, so replayed chunks of an ended stream are recognised, not started anew.

Write order is pages, then header, then deletions: a crash between them leaves a header that reads
only audio already stored.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import numpy.typing as npt

from stream_app.streaming import MergePolicy, SegmentMerger, StreamBuffer, StreamSession
from stream_app.streaming.exceptions import StateDecodeError
from stream_app.streaming.state import decode_buffer_state
from stream_app.worker.processor import Ended

PAGE_SAMPLES = 16_000  # one second of 16 kHz audio per record (64 kB of float32)
_ENDED = struct.Struct(">4sq")
_ENDED_MAGIC = b"END!"
_PAGES = struct.Struct(">qq")  # lowest page still stored, stream position up to which pages are written


def page_key(stream_id: str, page: int) -> bytes:
    """Return the key of one audio page of a stream."""
    return stream_id.encode() + b"\0" + page.to_bytes(8, "big")


class TableSessionStore:
    """`SessionStore` over faust tables; call only from the agent that owns the stream's partition."""

    def __init__(self, buffers: Any, audio: Any, mergers: Any, policy: MergePolicy) -> None:
        self.buffers = buffers
        self.audio = audio
        self.mergers = mergers
        self.policy = policy

    def load(self, stream_id: str) -> StreamSession | Ended | None:
        """Restore a stream's session from the tables."""
        key = stream_id.encode()
        merger_bytes = self.mergers.get(key)
        if merger_bytes is None:
            return None
        if merger_bytes[:4] == _ENDED_MAGIC:
            return Ended(_ENDED.unpack(merger_bytes)[1])
        stored = self.buffers.get(key)
        if stored is None:
            return None
        state = decode_buffer_state(stored[_PAGES.size :])
        state.audio = self._read_audio(stream_id, state.base, state.stream_end)
        buffer = StreamBuffer.from_state(state)
        merger = SegmentMerger.from_bytes(merger_bytes, self.policy)
        return StreamSession(stream_id, buffer.config, self.policy, buffer=buffer, merger=merger)

    def save(self, session: StreamSession) -> None:
        """Write the pages the stream added, its header and merger, then drop pages no longer needed."""
        key = session.stream_id.encode()
        meta, base, samples = session.buffer.to_parts()
        end = base + int(samples.shape[0])
        stored = self.buffers.get(key)
        low, written = _PAGES.unpack_from(stored) if stored is not None else (base // PAGE_SAMPLES, base)
        first_dirty = max(base, min(written, end)) // PAGE_SAMPLES
        for page in range(first_dirty, _page_count(end)):
            start = max(page * PAGE_SAMPLES, base)
            stop = min((page + 1) * PAGE_SAMPLES, end)
            self.audio[page_key(session.stream_id, page)] = _page_bytes(start, samples[start - base : stop - base])
        new_low = base // PAGE_SAMPLES
        self.buffers[key] = _PAGES.pack(new_low, end) + meta
        self.mergers[key] = session.merger.to_bytes()
        for page in range(low, new_low):
            self.audio.pop(page_key(session.stream_id, page), None)

    def end(self, stream_id: str, last_seq: int) -> None:
        """Drop the audio and the header, leaving the ended marker."""
        self._drop_buffer(stream_id)
        self.mergers[stream_id.encode()] = _ENDED.pack(_ENDED_MAGIC, last_seq)

    def forget(self, stream_id: str) -> None:
        """Drop every trace of the stream."""
        self._drop_buffer(stream_id)
        self.mergers.pop(stream_id.encode(), None)

    def stream_ids(self) -> list[str]:
        """Streams with state in this replica's active partitions (after a restart or a rebalance)."""
        return [bytes(key).decode("utf-8", errors="replace") for key in list(self.mergers.keys())]

    def _drop_buffer(self, stream_id: str) -> None:
        key = stream_id.encode()
        stored = self.buffers.pop(key, None)
        if stored is None:
            return
        low, written = _PAGES.unpack_from(stored)
        for page in range(low, _page_count(written)):
            self.audio.pop(page_key(stream_id, page), None)

    def _read_audio(self, stream_id: str, base: int, end: int) -> npt.NDArray[np.float32]:
        out = np.empty(end - base, np.float32)
        for page in range(base // PAGE_SAMPLES, _page_count(end)):
            raw = self.audio.get(page_key(stream_id, page))
            if raw is None:
                raise StateDecodeError(f"stream {stream_id}: audio page {page} is missing")
            first = int.from_bytes(raw[:8], "big")
            data = np.frombuffer(raw[8:], dtype="<f4")
            start, stop = max(first, base), min(first + data.shape[0], end)
            out[start - base : stop - base] = data[start - first : stop - first]
        return out


def _page_count(end: int) -> int:
    """Return the number of pages that cover ``[0, end)``."""
    return -(-end // PAGE_SAMPLES)


def _page_bytes(start: int, samples: npt.NDArray[np.float32]) -> bytes:
    """Encode a page record: the stream position of its first sample, then float32 samples."""
    return start.to_bytes(8, "big") + samples.astype("<f4", copy=False).tobytes()
