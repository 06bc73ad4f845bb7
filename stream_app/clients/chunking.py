"""Cutting audio into chunk records: sequence numbers, stream offsets and end of stream, no Kafka."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stream_app.audio.files import NativeAudio
from stream_app.audio.pcm import SAMPLE_BYTES, downmix, float_to_pcm, resample_whole
from stream_app.wire.chunk import SAMPLE_RATE, ChunkFormat
from stream_app.wire.content_type import MAX_CHANNELS, MAX_RATE, MIN_RATE

SOURCE_FORMATS = ("native", "s16le16k")


@dataclass(frozen=True)
class PlannedChunk:
    """One chunk ready to encode; ``start`` and ``duration`` are seconds, for real-time pacing."""

    seq: int
    offset: int  # frames at the chunk's own rate
    pcm: bytes
    end_of_stream: bool
    start: float
    duration: float


def prepare_audio(
    audio: NativeAudio, source_format: str = "native", encoding: str = "s16le"
) -> tuple[npt.NDArray[np.float32], ChunkFormat]:
    """Choose what goes on the wire: the file's own rate and channels, or 16 kHz mono s16le.

    Raises:
        ValueError: an unknown source format, or a native layout the service would reject.
    """
    if source_format == "s16le16k":
        mono = resample_whole(downmix(audio.frames), audio.sample_rate)
        return mono.reshape(-1, 1), ChunkFormat("s16le", SAMPLE_RATE, 1)
    if source_format != "native":
        raise ValueError(f"unknown source format {source_format!r}; choose from {', '.join(SOURCE_FORMATS)}")
    problem = native_layout_problem(audio.sample_rate, audio.channels)
    if problem:
        raise ValueError(
            f"{problem}; send it converted to 16 kHz mono: "
            f'stream-app publish --source-format s16le16k (source_format="s16le16k" from Python)'
        )
    return audio.frames, ChunkFormat(encoding, audio.sample_rate, audio.channels)


def native_layout_problem(sample_rate: int, channels: int) -> str | None:
    """Say why audio of this rate and channel count cannot go on the wire as it is (None when it can)."""
    if MIN_RATE <= sample_rate <= MAX_RATE and 1 <= channels <= MAX_CHANNELS:
        return None
    return (
        f"{sample_rate} Hz x {channels} channels, which cannot be sent natively "
        f"({MIN_RATE}..{MAX_RATE} Hz, 1..{MAX_CHANNELS} channels)"
    )


def frames_per_chunk(fmt: ChunkFormat, chunk_ms: float, max_bytes: int | None = None) -> int:
    """Count the frames in one chunk of ``chunk_ms``, checked against the service's payload limit."""
    if chunk_ms <= 0:
        raise ValueError(f"chunk_ms must be positive, got {chunk_ms}")
    frames = max(1, round(fmt.sample_rate * chunk_ms / 1000))
    size = frames * SAMPLE_BYTES[fmt.encoding] * fmt.channels
    if max_bytes is not None and size > max_bytes:
        raise ValueError(f"{chunk_ms} ms of {fmt} is {size} bytes, over the {max_bytes}-byte chunk limit")
    return frames


def plan_chunks(
    frames: npt.NDArray[np.float32],
    fmt: ChunkFormat,
    chunk_ms: float,
    *,
    start_seq: int = 0,
    start_offset: int = 0,
    end_of_stream: bool = True,
    max_bytes: int | None = None,
) -> Iterator[PlannedChunk]:
    """Cut ``(frames, channels)`` audio into consecutive chunks.

    The last chunk carries ``end_of_stream`` when asked; audio with no frames still yields one empty
    end-of-stream chunk, so the service learns that the stream ended.
    """
    step = frames_per_chunk(fmt, chunk_ms, max_bytes)
    total = int(frames.shape[0])
    if total == 0:
        if end_of_stream:
            yield PlannedChunk(start_seq, start_offset, b"", True, start_offset / fmt.sample_rate, 0.0)
        return
    for i, begin in enumerate(range(0, total, step)):
        piece = frames[begin : begin + step]
        offset = start_offset + begin
        yield PlannedChunk(
            seq=start_seq + i,
            offset=offset,
            pcm=float_to_pcm(piece, fmt.encoding),
            end_of_stream=end_of_stream and begin + step >= total,
            start=offset / fmt.sample_rate,
            duration=piece.shape[0] / fmt.sample_rate,
        )


def chunk_pcm_stream(
    blocks: Iterable[bytes], fmt: ChunkFormat, chunk_ms: float, *, max_bytes: int | None = None
) -> Iterator[PlannedChunk]:
    """Cut PCM bytes arriving in blocks of any size into chunks, each yielded as soon as it is full.

    The stream's end is known only when ``blocks`` ends: what is left then (whole frames) goes out as
    the last chunk with end of stream, or an empty end-of-stream chunk when nothing is left.
    """
    frame_bytes = SAMPLE_BYTES[fmt.encoding] * fmt.channels
    size = frames_per_chunk(fmt, chunk_ms, max_bytes) * frame_bytes
    pending = bytearray()
    seq = offset = 0

    def planned(pcm: bytes, end: bool) -> PlannedChunk:
        frames = len(pcm) // frame_bytes
        return PlannedChunk(seq, offset, pcm, end, offset / fmt.sample_rate, frames / fmt.sample_rate)

    for block in blocks:
        pending += block
        while len(pending) >= size:
            yield planned(bytes(pending[:size]), False)
            del pending[:size]
            seq, offset = seq + 1, offset + size // frame_bytes
    whole = len(pending) - len(pending) % frame_bytes  # a torn last frame cannot be sent
    yield planned(bytes(pending[:whole]), True)
