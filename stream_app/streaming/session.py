"""One stream's buffer and merger driven together, without Kafka and without a model.

The worker calls `StreamSession.feed` per chunk, sends the windows to inference itself (without
blocking its reading of the next records) and hands each result to `StreamSession.merge`, in window
order (or `StreamSession.fail` for a window whose inference failed). `transcribe_chunks` is the same loop for a
synchronous ``transcribe`` callable: tests and benchmarks run whole streams through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from stream_app.inference.types import WindowTranscript
from stream_app.streaming.buffer import ApplyResult, StreamBuffer
from stream_app.streaming.merger import MergePolicy, SegmentMerger
from stream_app.streaming.windowing import Window, WindowingConfig
from stream_app.wire.chunk import SAMPLE_RATE, AudioChunk
from stream_app.wire.segment import TranscriptSegment

Transcribe = Callable[[Window], WindowTranscript]


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
        session: str = "0",
        buffer: StreamBuffer | None = None,
        merger: SegmentMerger | None = None,
    ) -> None:
        self.buffer = buffer or StreamBuffer(config)
        self.merger = merger or SegmentMerger(stream_id, policy, session=session)
        self.buffer.state.committed_until = round(self.merger.committed_until * SAMPLE_RATE)

    @property
    def stream_id(self) -> str:
        """The stream this session belongs to."""
        return self.merger.stream_id

    @property
    def session(self) -> str:
        """The session (epoch) this state belongs to: part of every segment id."""
        return self.merger.state.session

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
        segments = self.merger.add(window, transcript)
        self.buffer.state.committed_until = round(self.merger.committed_until * SAMPLE_RATE)
        return segments

    def fail(self, window: Window, reason: str, detail: str = "") -> list[TranscriptSegment]:
        """Record a window whose inference failed: held words are kept, the rest is marked as a gap."""
        segments = self.merger.fail(window, reason, detail)
        self.buffer.state.committed_until = round(self.merger.committed_until * SAMPLE_RATE)
        return segments

    def run_windows(self, windows: Iterable[Window], transcribe: Transcribe) -> list[TranscriptSegment]:
        """Transcribe windows in order with ``transcribe`` (empty windows are not sent) and merge them."""
        segments: list[TranscriptSegment] = []
        for window in windows:
            transcript = None if window.is_empty else transcribe(window)
            segments.extend(self.merge(window, transcript))
        return segments


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
