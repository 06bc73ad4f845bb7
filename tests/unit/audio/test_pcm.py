from __future__ import annotations

import random

import numpy as np
import pytest

from stream_app.audio.pcm import (
    downmix,
    float_to_pcm,
    pcm_chunk_to_model_input,
    pcm_to_float,
    resample_chunk,
    resample_whole,
    target_position,
)
from stream_app.wire.chunk import SAMPLE_RATE


def _sine(freq: float, rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _chunked(mono: np.ndarray, rate: int, sizes: list[int]) -> list[np.ndarray]:
    out, pos = [], 0
    for size in sizes:
        piece = mono[pos : pos + size]
        out.append(resample_chunk(piece, rate, pos))
        pos += piece.shape[0]
    return out


def _peak_hz(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(signal.shape[0])))
    return float(np.fft.rfftfreq(signal.shape[0], 1 / rate)[np.argmax(spectrum)])


def test_target_position_rounds_half_up_exactly() -> None:
    assert target_position(0, 44_100) == 0
    assert target_position(44_100, 44_100) == 16_000
    assert target_position(441, 44_100) == 160
    assert target_position(3, 48_000) == 1  # 1.0
    assert target_position(3, 96_000) == 1  # 0.5 rounds up
    assert target_position(1, 96_000) == 0  # 0.1666
    big = 24 * 3600 * 192_000
    assert target_position(big, 192_000) == 24 * 3600 * 16_000


@pytest.mark.parametrize("rate", [8_000, 11_025, 22_050, 44_100, 48_000, 96_000])
def test_chunks_tile_the_stream_exactly(rate: int) -> None:
    rng = random.Random(rate)
    sizes = [rng.randint(1, rate // 5) for _ in range(300)]
    mono = np.zeros(sum(sizes), dtype=np.float32)
    pieces = _chunked(mono, rate, sizes)
    pos = 0
    for size, piece in zip(sizes, pieces, strict=True):
        assert piece.shape[0] == target_position(pos + size, rate) - target_position(pos, rate)
        assert piece.dtype == np.float32
        pos += size
    assert sum(p.shape[0] for p in pieces) == target_position(mono.shape[0], rate)


@pytest.mark.parametrize("rate", [8_000, 44_100, 48_000])
def test_chunked_resampling_keeps_a_sine_frequency_and_matches_whole(rate: int) -> None:
    mono = _sine(1_000.0, rate, 2.0)
    chunk = rate // 10  # 100 ms
    joined = np.concatenate(_chunked(mono, rate, [chunk] * 20))
    whole = resample_whole(mono, rate)
    assert joined.shape == whole.shape == (32_000,)
    assert abs(_peak_hz(joined, SAMPLE_RATE) - 1_000.0) < 2.0
    snr = 10 * np.log10(np.sum(whole**2) / np.sum((joined - whole) ** 2))
    assert snr > 30.0


def test_16k_input_is_passed_through() -> None:
    mono = _sine(300.0, SAMPLE_RATE, 0.05)
    np.testing.assert_array_equal(resample_chunk(mono, SAMPLE_RATE, 123), mono)


def test_tiny_chunks_have_their_exact_span() -> None:
    mono = np.ones(1, dtype=np.float32)
    lengths = [resample_chunk(mono, 44_100, pos).shape[0] for pos in range(441)]
    assert sum(lengths) == 160
    assert set(lengths) == {0, 1}


def test_downmix_is_the_channel_mean() -> None:
    frames = np.array([[1.0, 0.0], [0.5, -0.5], [-1.0, -1.0]], dtype=np.float32)
    np.testing.assert_array_equal(downmix(frames), np.array([0.5, 0.0, -1.0], dtype=np.float32))
    np.testing.assert_array_equal(downmix(frames[:, :1]), frames[:, 0])
    mono = np.array([0.25], dtype=np.float32)
    assert downmix(mono) is mono


def test_s16le_round_trip_and_clipping() -> None:
    frames = np.array([[0.0, 0.5], [-1.0, 0.999], [2.0, -3.0]], dtype=np.float32)
    pcm = float_to_pcm(frames, "s16le")
    assert pcm[:4] == b"\x00\x00\x00\x40"  # little-endian: 0, then 16384
    back = pcm_to_float(pcm, "s16le", 2)
    assert back.shape == (3, 2)
    np.testing.assert_allclose(back[:2], frames[:2], atol=1 / 32768)
    np.testing.assert_allclose(back[2], [32767 / 32768, -1.0])


def test_f32le_round_trip_is_exact() -> None:
    frames = np.random.default_rng(0).uniform(-1, 1, size=(50, 3)).astype(np.float32)
    back = pcm_to_float(float_to_pcm(frames, "f32le"), "f32le", 3)
    np.testing.assert_array_equal(back, frames)
    back[0, 0] = 5.0  # the result is writable, not a view of the bytes


def test_unknown_encoding_is_refused() -> None:
    with pytest.raises(ValueError, match="mulaw"):
        pcm_to_float(b"\x00", "mulaw", 1)
    with pytest.raises(ValueError, match="mulaw"):
        float_to_pcm(np.zeros(1), "mulaw")


def test_chunk_to_model_input_downmixes_and_resamples() -> None:
    left = _sine(500.0, 48_000, 0.1)
    frames = np.stack([left, np.zeros_like(left)], axis=1)
    offset16, samples = pcm_chunk_to_model_input(float_to_pcm(frames, "f32le"), "f32le", 48_000, 2, 4_800)
    assert offset16 == 1_600
    assert samples.shape == (1_600,)
    assert 0.2 < float(np.max(np.abs(samples))) < 0.3  # half of the 0.5 sine: the other channel is silent
