"""One stream's buffer and merger driven together, without Kafka and without a model.

The worker calls `StreamSession.feed` per chunk, sends the windows to inference itself (it awaits the
pool) and hands each result to `StreamSession.merge`. `transcribe_chunks` is the same loop for a
synchronous ``transcribe`` callable: tests and benchmarks run whole streams through it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from stream_app.inference.types import WindowTranscript
from stream_app.streaming.buffer import ApplyResult, StreamBuffer
from stream_app.streaming.exceptions import StateDecodeError
from stream_app.streaming.merger import MergePolicy, SegmentMerger
from stream_app.streaming.state import PcmEncoding
from stream_app.streaming.windowing import Window, WindowingConfig
from stream_app.wire.chunk import AudioChunk
from stream_app.wire.segment import TranscriptSegment

Transcribe = Callable[[Window], WindowTranscript]

_SESSION = struct.Struct(">2sBI")
_MAGIC = b"SS"
_VERSION = 1


@dataclass(frozen=True)
class Step:
    """What one chunk (or closing the stream) did: the buffer's report and the windows now ready."""

    applied: ApplyResult
    windows: tuple[Window, ...]


class StreamSession:
    """A stream's `StreamBuffer` and `SegmentMerger`, stored and restored as one value."""

    def __init__(
        self,
        stream_id: str,
        config: WindowingConfig,
        policy: MergePolicy | None = None,
        *,
        buffer: StreamBuffer | None = None,
        merger: SegmentMerger | None = None,
    ) -> None:
        self.buffer = buffer or StreamBuffer(config)
        self.merger = merger or SegmentMerger(stream_id, policy)

    @property
    def stream_id(self) -> str:
        """The stream this session belongs to."""
        return self.merger.stream_id

    @property
    def finished(self) -> bool:
        """The end-of-stream segment was emitted: the stream's state can be evicted."""
        return self.merger.ended

    def feed(self, chunk: AudioChunk) -> Step:
        """Apply one chunk and return the windows it made ready."""
        applied = self.buffer.apply(chunk)
        return Step(applied, tuple(self.buffer.take_ready_windows()))

    def close(self) -> Step:
        """End the stream (idle timeout or shutdown) and return the windows still to transcribe."""
        applied = self.buffer.close()
        return Step(applied, tuple(self.buffer.take_ready_windows()))

    def merge(self, window: Window, transcript: WindowTranscript | None) -> list[TranscriptSegment]:
        """Merge one window's transcript (``None`` for an empty window) into the transcript."""
        return self.merger.add(window, transcript)

    def run_windows(self, windows: Iterable[Window], transcribe: Transcribe) -> list[TranscriptSegment]:
        """Transcribe windows in order with ``transcribe`` (empty windows are not sent) and merge them."""
        segments: list[TranscriptSegment] = []
        for window in windows:
            transcript = None if window.is_empty else transcribe(window)
            segments.extend(self.merge(window, transcript))
        return segments

    def to_bytes(self, encoding: PcmEncoding = "f32") -> bytes:
        """Both states in one value: a length-prefixed buffer state followed by the merger state."""
        buffer = self.buffer.to_bytes(encoding)
        return _SESSION.pack(_MAGIC, _VERSION, len(buffer)) + buffer + self.merger.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes, policy: MergePolicy | None = None) -> StreamSession:
        """Resume a session stored with `to_bytes`."""
        if len(data) < _SESSION.size:
            raise StateDecodeError(f"session state is too short ({len(data)} bytes)")
        magic, version, size = _SESSION.unpack_from(data)
        if magic != _MAGIC or version != _VERSION:
            raise StateDecodeError(f"not a session state of version {_VERSION} ({magic!r}, {version})")
        body = data[_SESSION.size :]
        buffer = StreamBuffer.from_bytes(body[:size])
        merger = SegmentMerger.from_bytes(body[size:], policy)
        return cls(merger.stream_id, buffer.config, policy, buffer=buffer, merger=merger)


def transcribe_chunks(
    chunks: Iterable[AudioChunk],
    transcribe: Transcribe,
    config: WindowingConfig,
    policy: MergePolicy | None = None,
    *,
    close_at_end: bool = True,
) -> Iterator[TranscriptSegment]:
    """Run one stream's chunks through buffer and merger, yielding segments as they are produced.

    ``transcribe`` is called once per non-empty window, in order; it is where a model (or a test's
    fake) sits. With ``close_at_end`` the stream is closed after the last chunk even if no chunk
    carried end of stream, so the last window and the end-of-stream segment always come out.
    """
    session: StreamSession | None = None
    for chunk in chunks:
        if session is None:
            session = StreamSession(chunk.stream_id, config, policy)
        step = session.feed(chunk)
        yield from session.run_windows(step.windows, transcribe)
    if session is not None and close_at_end and not session.finished:
        yield from session.run_windows(session.close().windows, transcribe)
