"""Stream state in RocksDB-backed faust tables: ``buffers`` (audio) and ``mergers`` (transcript state).

Both are keyed by the stream id and changelogged, so a replica that takes a partition over resumes the
stream mid-utterance. A finished stream leaves a tiny marker in ``mergers`` until its idle tick
removes it, so that replayed chunks of an ended stream are recognised instead of starting it anew.
"""

from __future__ import annotations

import struct
from typing import Any

from stream_app.streaming import MergePolicy, SegmentMerger, StreamBuffer, StreamSession
from stream_app.worker.processor import Ended

_ENDED = struct.Struct(">4sq")
_ENDED_MAGIC = b"END!"


class TableSessionStore:
    """`SessionStore` over two faust tables; call only from the agent that owns the stream's partition."""

    def __init__(self, buffers: Any, mergers: Any, policy: MergePolicy) -> None:
        self.buffers = buffers
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
        buffer_bytes = self.buffers.get(key)
        if buffer_bytes is None:
            return None
        buffer = StreamBuffer.from_bytes(buffer_bytes)
        merger = SegmentMerger.from_bytes(merger_bytes, self.policy)
        return StreamSession(stream_id, buffer.config, self.policy, buffer=buffer, merger=merger)

    def save(self, session: StreamSession) -> None:
        """Write both halves of the state (audio as raw float32 bytes, not JSON)."""
        key = session.stream_id.encode()
        self.buffers[key] = session.buffer.to_bytes()
        self.mergers[key] = session.merger.to_bytes()

    def end(self, stream_id: str, last_seq: int) -> None:
        """Drop the audio and leave the ended marker."""
        key = stream_id.encode()
        self.buffers.pop(key, None)
        self.mergers[key] = _ENDED.pack(_ENDED_MAGIC, last_seq)

    def forget(self, stream_id: str) -> None:
        """Drop every trace of the stream."""
        key = stream_id.encode()
        self.buffers.pop(key, None)
        self.mergers.pop(key, None)

    def stream_ids(self) -> list[str]:
        """Streams with state in this replica's active partitions (after a restart or a rebalance)."""
        return [bytes(key).decode("utf-8", errors="replace") for key in list(self.mergers.keys())]
