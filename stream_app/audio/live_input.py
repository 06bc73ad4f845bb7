"""Audio arriving on a pipe (a microphone, a decoder, another program), read as it comes, never all at once.

`open_live_input` takes a file descriptor and gives back the format to send and the PCM bytes in it,
block by block, as soon as they are read:
- raw PCM (``--pcm s16le --rate 16000 --channels 1``): passed through untouched;
- WAV (what ``arecord`` writes): the header is read, the PCM after it passed through (16-bit or float);
- any other container or codec (FLAC, Ogg/Opus, MP3, WAV of other sample formats, ...): decoded by
  PyAV (its own FFmpeg) as packets arrive and sent at its native rate and channels.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

from stream_app.audio.pcm import SAMPLE_BYTES, float_to_pcm
from stream_app.audio.wav_header import RIFF_HEAD, is_wav, parse_chunk_header, parse_format
from stream_app.wire.chunk import ChunkFormat

READ_BYTES = 4096  # one os.read: returns what the pipe holds, up to this much, so nothing waits for a full block
PROBE_BYTES = "4096"  # how much FFmpeg reads before it decides the format (its default, 5 MB, is minutes of speech)


class LiveInputError(ValueError):
    """The bytes on the pipe are not audio stream-app can send; the message says what they were."""


@dataclass
class LiveInput:
    """The format the bytes are in, and the bytes (``blocks`` yields them until the pipe closes)."""

    fmt: ChunkFormat
    blocks: Iterator[bytes]


class _Pipe:
    """A file-like reader over a descriptor that returns what is there now (PyAV reads through it)."""

    def __init__(self, fd: int, prefix: bytes = b"") -> None:
        self._fd = fd
        self._prefix = prefix

    def read(self, size: int) -> bytes:
        if self._prefix:
            out, self._prefix = self._prefix[:size], self._prefix[size:]
            return out
        return os.read(self._fd, size)


def read_exactly(fd: int, size: int) -> bytes:
    """Read ``size`` bytes, fewer only at the end of the pipe."""
    parts: list[bytes] = []
    got = 0
    while got < size:
        block = os.read(fd, size - got)
        if not block:
            break
        parts.append(block)
        got += len(block)
    return b"".join(parts)


def open_live_input(fd: int, raw: ChunkFormat | None = None, encoding: str = "s16le") -> LiveInput:
    """Read the start of the pipe to learn its format; ``raw`` says the bytes are PCM in that format already.

    ``encoding`` is what decoded audio is sent as (``s16le`` or ``f32le``).

    Raises:
        LiveInputError: nothing arrived, or the bytes are not audio PyAV can decode.
    """
    if raw is not None:
        return LiveInput(raw, _raw_blocks(fd, b""))
    head = read_exactly(fd, RIFF_HEAD)
    if not head:
        raise LiveInputError("nothing arrived on standard input")
    if is_wav(head):
        fmt, body, rest = _wav_format(fd, head)
        if fmt is not None:
            return LiveInput(fmt, _raw_blocks(fd, rest))
        return _decoded(_Pipe(fd, head + body + rest), encoding)
    return _decoded(_Pipe(fd, head), encoding)


def _raw_blocks(fd: int, first: bytes) -> Iterator[bytes]:
    if first:
        yield first
    while block := os.read(fd, READ_BYTES):
        yield block


def _wav_format(fd: int, head: bytes) -> tuple[ChunkFormat | None, bytes, bytes]:
    """Read chunk headers up to ``data``; return the format to send as is (None: decode it), what was read."""
    consumed = b""
    fmt: ChunkFormat | None = None
    while True:
        raw = read_exactly(fd, 8)
        consumed += raw
        if len(raw) < 8:
            raise LiveInputError("the WAV header ends before its audio")
        ident, size = parse_chunk_header(raw)
        if ident == b"data":
            return fmt, consumed, b""
        body = read_exactly(fd, size + (size & 1))  # chunks are padded to an even size
        consumed += body
        if ident == b"fmt ":
            wav = parse_format(body[:size])
            fmt = ChunkFormat(wav.encoding, wav.sample_rate, wav.channels) if wav.encoding else None


def _decoded(pipe: _Pipe, encoding: str) -> LiveInput:
    try:
        container = av.open(
            pipe, mode="r", buffer_size=READ_BYTES, options={"probesize": PROBE_BYTES, "analyzeduration": "0"}
        )
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise LiveInputError(f"standard input is not audio FFmpeg can read ({exc})") from exc
    if not container.streams.audio:
        container.close()
        raise LiveInputError("standard input holds no audio stream")
    stream = container.streams.audio[0]
    rate = int(stream.codec_context.sample_rate)
    channels = len(stream.codec_context.layout.channels)
    if encoding not in SAMPLE_BYTES:
        raise LiveInputError(f"unknown encoding {encoding!r}")
    return LiveInput(ChunkFormat(encoding, rate, channels), _decode_blocks(container, stream, encoding, channels))


def _decode_blocks(
    container: av.container.InputContainer, stream: av.AudioStream, encoding: str, channels: int
) -> Iterator[bytes]:
    codec = stream.codec_context
    resampler = av.AudioResampler(format="flt", layout=codec.layout, rate=codec.sample_rate)
    try:
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                yield float_to_pcm(np.asarray(out.to_ndarray(), dtype=np.float32).reshape(-1, channels), encoding)
        for out in resampler.resample(None):
            yield float_to_pcm(np.asarray(out.to_ndarray(), dtype=np.float32).reshape(-1, channels), encoding)
    except av.FFmpegError as exc:
        raise LiveInputError(f"decoding standard input failed ({exc})") from exc
    finally:
        container.close()
