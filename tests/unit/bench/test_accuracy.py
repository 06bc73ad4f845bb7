"""The pure parts of `bench accuracy`: the delayed reference recording, the worst file's difference, a file's texts."""

from __future__ import annotations

import numpy as np
import pytest

from stream_app.bench.accuracy import delayed, transcript_record, worst_difference


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


def test_a_file_s_record_lists_each_decode_s_errors_in_order() -> None:
    reference = "The meeting is on Thursday, not Tuesday."
    streamed = "the meeting on thursday not a tuesday"
    record = transcript_record(reference, {"streamed": streamed, "whole_file": reference})
    assert record["reference"] == reference
    assert record["streamed"]["errors"] == ["-is", "+a"]
    assert record["streamed"]["wer"] == 0.2857  # 2 errors in 7 words
    assert record["whole_file"] == {"text": reference, "wer": 0.0, "errors": []}
    swapped = transcript_record("no yes", {"streamed": "no guess"})["streamed"]
    assert swapped["errors"] == ["yes>guess"]
