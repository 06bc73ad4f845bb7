from __future__ import annotations

import numpy as np
import pytest

from stream_app.audio.files import NativeAudio
from stream_app.audio.pcm import pcm_to_float
from stream_app.clients.chunking import frames_per_chunk, plan_chunks, prepare_audio
from stream_app.wire.chunk import ChunkFormat


def _audio(rate: int = 44_100, channels: int = 2, frames: int = 44_100) -> NativeAudio:
    rng = np.random.default_rng(1)
    return NativeAudio(rng.uniform(-0.5, 0.5, size=(frames, channels)).astype(np.float32), rate)


def test_chunks_are_numbered_contiguous_and_end_the_stream() -> None:
    frames, fmt = prepare_audio(_audio())
    chunks = list(plan_chunks(frames, fmt, 100.0))
    assert fmt == ChunkFormat("s16le", 44_100, 2)
    assert [c.seq for c in chunks] == list(range(10))
    assert [c.offset for c in chunks] == [i * 4_410 for i in range(10)]
    assert [c.end_of_stream for c in chunks] == [False] * 9 + [True]
    joined = np.concatenate([pcm_to_float(c.pcm, "s16le", 2) for c in chunks])
    np.testing.assert_allclose(joined, frames, atol=1 / 32768)
    assert chunks[3].start == pytest.approx(0.3)
    assert chunks[3].duration == pytest.approx(0.1)


def test_last_chunk_may_be_short_and_offsets_continue() -> None:
    frames, fmt = prepare_audio(_audio(frames=10_000), encoding="f32le")
    chunks = list(plan_chunks(frames, fmt, 100.0, start_seq=5, start_offset=88_200, end_of_stream=False))
    assert [c.seq for c in chunks] == [5, 6, 7]
    assert [c.offset for c in chunks] == [88_200, 92_610, 97_020]
    assert len(chunks[-1].pcm) == (10_000 - 2 * 4_410) * 4 * 2
    assert not any(c.end_of_stream for c in chunks)


def test_empty_audio_still_ends_the_stream() -> None:
    fmt = ChunkFormat("s16le", 16_000, 1)
    (only,) = plan_chunks(np.zeros((0, 1), dtype=np.float32), fmt, 100.0, start_seq=4, start_offset=16_000)
    assert (only.seq, only.offset, only.pcm, only.end_of_stream) == (4, 16_000, b"", True)
    assert list(plan_chunks(np.zeros((0, 1), dtype=np.float32), fmt, 100.0, end_of_stream=False)) == []


def test_s16le16k_source_format_is_16k_mono() -> None:
    frames, fmt = prepare_audio(_audio(), "s16le16k")
    assert fmt == ChunkFormat("s16le", 16_000, 1)
    assert frames.shape == (16_000, 1)


def test_layouts_the_service_rejects_are_refused_up_front() -> None:
    with pytest.raises(ValueError, match="--source-format s16le16k"):  # the flag a user types
        prepare_audio(_audio(rate=4_000))
    with pytest.raises(ValueError, match="source format"):
        prepare_audio(_audio(), "mp3")
    fmt = ChunkFormat("f32le", 192_000, 8)
    with pytest.raises(ValueError, match="chunk limit"):
        frames_per_chunk(fmt, 1_000.0, max_bytes=1_000_000)
    with pytest.raises(ValueError, match="positive"):
        frames_per_chunk(fmt, 0.0)
    assert frames_per_chunk(ChunkFormat("s16le", 8_000, 1), 0.01) == 1
