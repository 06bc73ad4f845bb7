"""Encoder context sizing and bucketing: how many frames a window gets, and which windows share a call."""

from __future__ import annotations

import numpy as np
import pytest
from faster_whisper.feature_extractor import FeatureExtractor

from stream_app.inference.context import (
    FULL_CONTEXT,
    FULL_FRAMES,
    EncoderContext,
    content_frames,
    group_by,
)


@pytest.mark.parametrize("samples", [0, 159, 160, 16_000, 16_159, 160_000, 175_999, 480_000])
def test_content_frames_count_as_faster_whisper_does(samples: int) -> None:
    mel = FeatureExtractor()(np.zeros(samples, np.float32))
    assert content_frames(samples) == mel.shape[-1] - 1


def test_fitted_context_is_the_audio_plus_the_margin_rounded_up_to_a_bucket() -> None:
    context = EncoderContext("fitted", margin=1.0, bucket=1.0)
    assert context.frames_for(1000) == 1100  # 10 s + 1 s, already a whole bucket
    assert context.frames_for(1001) == 1200  # 10.01 s + 1 s rounds up to the next second
    assert context.frames_for(0) == 100
    assert EncoderContext("fitted", margin=0.5, bucket=2.0).frames_for(730) == 800
    assert EncoderContext("fitted", margin=0.0, bucket=0.01).frames_for(731) == 731


def test_the_margin_is_never_less_than_asked() -> None:
    context = EncoderContext("fitted", margin=1.5, bucket=1.0)
    for content in range(0, 2850, 7):  # below 28.5 s: longer windows reach the 30 s cap first
        frames = context.frames_for(content)
        assert frames - content >= 150 and frames % 100 == 0 and frames - content < 250


def test_no_window_gets_more_than_thirty_seconds() -> None:
    context = EncoderContext("fitted", margin=2.0, bucket=1.0)
    assert context.frames_for(2900) == FULL_FRAMES
    assert context.frames_for(3000) == FULL_FRAMES
    assert context.frames_for(5000) == FULL_FRAMES


def test_full_context_always_pads_to_thirty_seconds() -> None:
    assert FULL_CONTEXT.frames_for(0) == FULL_FRAMES
    assert FULL_CONTEXT.frames_for(1234) == FULL_FRAMES
    assert not FULL_CONTEXT.fitted and EncoderContext().fitted


def test_describe_names_the_mode_margin_and_bucket() -> None:
    assert FULL_CONTEXT.describe() == "full"
    assert EncoderContext("fitted", 1.0, 1.0).describe() == "fitted+1s/1s"
    assert EncoderContext("fitted", 0.5, 2.0).describe() == "fitted+0.5s/2s"


@pytest.mark.parametrize(
    ("mode", "margin", "bucket", "message"),
    [("padded", 1.0, 1.0, "encoder context"), ("fitted", -0.5, 1.0, "margin"), ("fitted", 1.0, 0.0, "bucket")],
)
def test_bad_contexts_are_refused(mode: str, margin: float, bucket: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EncoderContext(mode, margin, bucket)  # type: ignore[arg-type]


def test_groups_keep_first_seen_order_and_positions_in_order() -> None:
    assert group_by([(1100, 1), (600, 1), (1100, 1), (1100, 14), (600, 1)]) == {
        (1100, 1): [0, 2],
        (600, 1): [1, 4],
        (1100, 14): [3],
    }
    assert group_by([]) == {}


def test_a_windows_bucket_depends_on_its_own_length_only() -> None:
    context = EncoderContext("fitted", margin=1.0, bucket=1.0)
    lengths = [9.67, 2.75, 8.1, 9.99, 10.0]
    alone = [context.frames_for(content_frames(round(s * 16000))) for s in lengths]
    in_batch = [context.frames_for(content_frames(round(s * 16000))) for s in reversed(lengths)][::-1]
    assert alone == in_batch == [1100, 400, 1000, 1100, 1100]
    groups = group_by(alone)
    assert groups == {1100: [0, 3, 4], 400: [1], 1000: [2]}
