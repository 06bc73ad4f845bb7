"""Raw PCM to what Whisper consumes: 16 kHz mono float32, chunk by chunk without drift.

Each chunk is resampled on its own (the decoder keeps no per-stream state, so any replica can
decode any chunk), and its 16 kHz length is fixed from its stream position, not from what the
resampler returned: consecutive chunks therefore tile the 16 kHz stream exactly.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

from stream_app.wire.chunk import SAMPLE_RATE

Float32Array = npt.NDArray[np.float32]

ENCODINGS = ("s16le", "f32le")
SAMPLE_BYTES = {"s16le": 2, "f32le": 4}
_S16_SCALE = 32768.0


def target_position(position: int, sample_rate: int) -> int:
    """Map a stream position in samples at ``sample_rate`` to 16 kHz samples (round half up, exact)."""
    return (2 * position * SAMPLE_RATE + sample_rate) // (2 * sample_rate)


def pcm_to_float(pcm: bytes, encoding: str, channels: int) -> Float32Array:
    """Interpret interleaved little-endian PCM as float32 frames of shape ``(frames, channels)``."""
    if encoding not in SAMPLE_BYTES:
        raise ValueError(f"unsupported encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}")
    if encoding == "s16le":
        ints = np.frombuffer(pcm, dtype=np.dtype("<i2"))
        samples: Float32Array = ints.astype(np.float32) / np.float32(_S16_SCALE)
    else:
        # astype makes a native-order, writable copy of frombuffer's read-only view
        samples = np.frombuffer(pcm, dtype=np.dtype("<f4")).astype(np.float32)
    return samples.reshape(-1, channels)


def float_to_pcm(frames: npt.NDArray[np.floating], encoding: str) -> bytes:
    """Encode float frames (``(frames,)`` or ``(frames, channels)``) as interleaved little-endian PCM.

    s16le clips to [-1, 1) first, so loud float input saturates instead of wrapping around.
    """
    if encoding == "s16le":
        scaled = np.clip(np.rint(np.asarray(frames, dtype=np.float64) * _S16_SCALE), -32768, 32767)
        return scaled.astype("<i2").tobytes()
    if encoding == "f32le":
        return np.asarray(frames, dtype="<f4").tobytes()
    raise ValueError(f"unsupported encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}")


def downmix(frames: Float32Array) -> Float32Array:
    """Mono as the mean of the channels (a 1-D input is already mono)."""
    if frames.ndim == 1:
        return frames
    if frames.shape[1] == 1:
        return np.ascontiguousarray(frames[:, 0])
    mono: Float32Array = frames.mean(axis=1, dtype=np.float32)
    return mono


def resample_chunk(mono: Float32Array, sample_rate: int, offset: int) -> Float32Array:
    """Resample one chunk to 16 kHz, trimmed or padded to the exact span its stream position implies.

    Args:
        mono: the chunk's mono samples at ``sample_rate``.
        sample_rate: the chunk's own rate.
        offset: stream position of the chunk's first sample, in samples at ``sample_rate``.

    Returns:
        ``target_position(offset + n) - target_position(offset)`` samples at 16 kHz.
    """
    n = int(mono.shape[0])
    length = target_position(offset + n, sample_rate) - target_position(offset, sample_rate)
    if sample_rate == SAMPLE_RATE:
        return np.ascontiguousarray(mono, dtype=np.float32)
    if n == 0 or length == 0:
        return np.zeros(length, dtype=np.float32)
    out = np.asarray(soxr.resample(mono, sample_rate, SAMPLE_RATE, quality="HQ"), dtype=np.float32)
    if out.shape[0] >= length:
        return np.ascontiguousarray(out[:length])
    if out.shape[0] == 0:
        return np.zeros(length, dtype=np.float32)
    return np.pad(out, (0, length - out.shape[0]), mode="edge")


def resample_whole(mono: Float32Array, sample_rate: int) -> Float32Array:
    """Resample a whole signal to 16 kHz in one pass (files, references)."""
    if sample_rate == SAMPLE_RATE:
        return np.ascontiguousarray(mono, dtype=np.float32)
    if mono.shape[0] == 0:
        return np.zeros(0, dtype=np.float32)
    out = np.asarray(soxr.resample(mono, sample_rate, SAMPLE_RATE, quality="HQ"), dtype=np.float32)
    return np.ascontiguousarray(out)


def pcm_chunk_to_model_input(
    pcm: bytes, encoding: str, sample_rate: int, channels: int, offset: int
) -> tuple[int, Float32Array]:
    """Convert one chunk's PCM to 16 kHz mono float32.

    Returns:
        The chunk's 16 kHz stream offset and its samples.
    """
    mono = downmix(pcm_to_float(pcm, encoding, channels))
    return target_position(offset, sample_rate), resample_chunk(mono, sample_rate, offset)
