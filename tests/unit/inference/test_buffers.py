"""Reused feature buffers: bit-identical to faster-whisper's extractor, reused across calls, grown safely."""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt
import pytest
from faster_whisper.audio import pad_or_trim
from faster_whisper.feature_extractor import FeatureExtractor

from stream_app.inference.buffers import N_FRAMES, FeatureBufferPool, FeatureBuffers


def _noise(samples: int, seed: int) -> npt.NDArray[np.float32]:
    return np.asarray(np.random.default_rng(seed).normal(0.0, 0.1, samples), dtype=np.float32)


@pytest.mark.parametrize("n_mels", [80, 128])
@pytest.mark.parametrize("samples", [0, 30, 41, 42, 1_000, 16_000, 160_001, 333_333, 480_000])
def test_log_mel_is_bit_identical_to_faster_whisper(n_mels: int, samples: int) -> None:
    extractor = FeatureExtractor(feature_size=n_mels)
    buffers = FeatureBuffers(extractor.mel_filters)
    audio = _noise(samples, seed=samples)
    expected = extractor(audio)
    got = buffers.log_mel(audio)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert np.array_equal(got, expected)


def test_written_features_equal_the_padded_stack_they_replace() -> None:
    extractor = FeatureExtractor()
    buffers = FeatureBuffers(extractor.mel_filters)
    audios = [_noise(30 * 16000, 1), _noise(10 * 16000 + 7, 2), _noise(3 * 16000, 3)]
    batch = buffers.batch_view(len(audios))
    contents = [buffers.write_features(batch, i, a) for i, a in enumerate(audios)]
    mels = [extractor(a) for a in audios]
    assert contents == [m.shape[-1] - 1 for m in mels]
    expected = np.stack([pad_or_trim(m[:, : m.shape[-1] - 1]) for m in mels])
    assert batch.shape == (3, 80, N_FRAMES) and batch.flags.c_contiguous
    assert np.array_equal(batch, expected)


def test_a_short_window_clears_what_a_long_one_left_in_its_slot() -> None:
    extractor = FeatureExtractor()
    buffers = FeatureBuffers(extractor.mel_filters)
    batch = buffers.batch_view(1)
    buffers.write_features(batch, 0, _noise(30 * 16000, 4))
    short = _noise(2 * 16000, 5)
    content = buffers.write_features(batch, 0, short)
    assert np.array_equal(batch[0], pad_or_trim(extractor(short)[:, :content]))
    assert not batch[0, :, content:].any()


def test_buffers_are_reused_across_calls_and_grow_when_needed() -> None:
    extractor = FeatureExtractor()
    buffers = FeatureBuffers(extractor.mel_filters)
    ten_seconds, twenty = _noise(10 * 16000, 6), _noise(20 * 16000, 7)
    first = buffers.log_mel(ten_seconds)
    pointer = first.ctypes.data
    again = buffers.log_mel(_noise(5 * 16000, 8))
    assert again.ctypes.data == pointer  # a smaller window reuses the same memory
    grown = buffers.log_mel(twenty)  # a larger one outgrows it: new memory, same results
    assert np.array_equal(grown, extractor(twenty))
    after = buffers.log_mel(ten_seconds)
    assert after.ctypes.data == grown.ctypes.data  # and the grown buffer is kept
    assert np.array_equal(after, extractor(ten_seconds))

    two = buffers.batch_view(2)
    assert buffers.batch_view(1).ctypes.data == two.ctypes.data
    eight = buffers.batch_view(8)
    assert eight.shape == (8, 80, N_FRAMES) and eight.flags.c_contiguous
    assert buffers.batch_view(3).ctypes.data == eight.ctypes.data


def test_pool_gives_each_thread_its_own_buffers_and_keeps_them() -> None:
    pool = FeatureBufferPool(FeatureExtractor().mel_filters)
    mine = pool.get()
    assert pool.get() is mine
    seen: list[FeatureBuffers] = []
    worker = threading.Thread(target=lambda: seen.extend([pool.get(), pool.get()]))
    worker.start()
    worker.join()
    assert seen[0] is seen[1] and seen[0] is not mine


def test_a_fitted_batch_is_contiguous_and_padded_to_its_own_length() -> None:
    extractor = FeatureExtractor()
    buffers = FeatureBuffers(extractor.mel_filters)
    audios = [_noise(10 * 16000, 9), _noise(7 * 16000 + 3, 10)]
    batch = buffers.batch_view(len(audios), 1100)
    contents = [buffers.write_features(batch, i, a) for i, a in enumerate(audios)]
    assert batch.shape == (2, 80, 1100) and batch.flags.c_contiguous
    assert contents == [1000, 700]
    for i, (audio, content) in enumerate(zip(audios, contents, strict=True)):
        assert np.array_equal(batch[i, :, :content], extractor(audio)[:, :content])
        assert not batch[i, :, content:].any()
    shorter = buffers.batch_view(1, 600)  # a window longer than its frames is cut to them
    assert buffers.write_features(shorter, 0, audios[0]) == 1000
    assert np.array_equal(shorter[0], extractor(audios[0])[:, :600])
    assert shorter.ctypes.data == batch.ctypes.data  # the same memory, viewed at another length
