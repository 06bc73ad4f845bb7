"""The pure parts of `bench accuracy`: the delayed reference recording and the worst file's difference."""

from __future__ import annotations

import numpy as np
import pytest

from stream_app.bench.accuracy import delayed, worst_difference


def test_a_delayed_recording_is_the_same_samples_after_that_much_silence() -> None:
    samples = np.linspace(-0.5, 0.5, 1000, dtype=np.float32)
    out = delayed(samples, 0.25)
    assert out.dtype == np.float32
    assert out.shape[0] == 4000 + 1000
    assert not out[:4000].any()
    np.testing.assert_array_equal(out[4000:], samples)


def test_the_worst_difference_is_the_largest_signed_one_with_its_file() -> None:
    files = ["a.wav", "b.wav", "c.wav"]
    # b is far better than its reference (a large negative difference), c is slightly worse: c is the worst.
    assert worst_difference(files, [0.30, 0.10, 0.26], [0.30, 0.40, 0.20]) == (0.06, "c.wav")


def test_the_worst_difference_refuses_lists_of_other_lengths() -> None:
    with pytest.raises(ValueError):
        worst_difference(["a.wav"], [0.1, 0.2], [0.1])
