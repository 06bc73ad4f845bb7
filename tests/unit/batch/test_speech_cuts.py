"""Windows that follow speech: all speech kept, silences skipped, limits held, cuts at the longest pause."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.batch.speech_cuts import (
    FRAME,
    SpeechCutPolicy,
    padded,
    speech_cut_points,
    speech_spans,
    voiced_ranges,
)
from stream_app.config import load_settings

RATE = 16000
POLICY = SpeechCutPolicy()
PER_SECOND = RATE / FRAME  # 31.25 frames


def _probs(pattern: list[tuple[float, float]]) -> np.ndarray:
    """(seconds, probability) runs, one probability per frame."""
    return np.concatenate([np.full(round(s * PER_SECOND), p, np.float32) for s, p in pattern])


def test_silence_gives_no_window() -> None:
    probs = _probs([(10.0, 0.05)])
    assert speech_cut_points(probs, len(probs) * FRAME, POLICY) == []


def test_speech_is_kept_with_lead_and_tail_and_a_long_pause_closes_the_window() -> None:
    probs = _probs([(3.0, 0.0), (4.0, 0.9), (3.0, 0.0), (5.0, 0.9), (2.0, 0.0)])
    ranges = speech_cut_points(probs, len(probs) * FRAME, POLICY)
    assert len(ranges) == 2  # the 3 s silence is a long pause
    (a, b), (c, d) = ranges
    assert a / RATE == np.float64(3.0 - 0.4).round(2) or abs(a / RATE - 2.6) < 0.05
    assert abs(b / RATE - 7.3) < 0.05 and abs(c / RATE - 9.6) < 0.05 and abs(d / RATE - 15.3) < 0.05


def test_a_window_reaching_the_limit_is_cut_at_its_longest_pause_in_the_second_half() -> None:
    runs: list[tuple[float, float]] = []
    for pause in (0.3, 0.3, 0.3, 1.2, 0.3, 0.3, 0.3, 0.3):  # speech 2.5 s, then the pause
        runs += [(2.5, 0.9), (pause, 0.1)]
    probs = _probs(runs)
    ranges = speech_cut_points(probs, len(probs) * FRAME, POLICY)
    first_end = ranges[0][1] / RATE
    assert 10.9 < first_end < 12.1  # inside the 1.2 s pause after 4 x 2.5 s of speech (10.9-12.1 s)
    assert all((end - start) / RATE <= POLICY.max_seconds + POLICY.lead + POLICY.tail for start, end in ranges)


def test_one_span_longer_than_the_limit_is_cut_at_its_least_speech_like_frame() -> None:
    probs = _probs([(18.0, 0.9), (0.1, 0.4), (15.0, 0.9)])  # no frame below the silence threshold
    ranges = speech_cut_points(probs, len(probs) * FRAME, POLICY)
    assert len(ranges) == 2
    assert abs(ranges[0][1] / RATE - 18.05) < 0.1
    assert ranges[0][1] <= ranges[1][0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.05, 30.0), st.sampled_from([0.0, 0.2, 0.4, 0.6, 0.95])), min_size=1, max_size=30))
def test_every_speech_frame_lies_in_one_window_and_windows_keep_the_limit(runs: list[tuple[float, float]]) -> None:
    probs = _probs(runs)
    if len(probs) == 0:
        return
    total = len(probs) * FRAME
    ranges = speech_cut_points(probs, total, POLICY)
    assert all(0 <= a < b <= total for a, b in ranges)
    assert all(x[1] <= y[0] for x, y in itertools.pairwise(ranges))
    limit = (POLICY.max_seconds + POLICY.lead + POLICY.tail) * RATE + FRAME
    assert all(b - a <= limit for a, b in ranges)
    long_pause = POLICY.long_pause * PER_SECOND
    groups: list[list[tuple[int, int]]] = []  # speech a long pause apart from other speech
    for span in speech_spans(probs, POLICY):
        if groups and span[0] - groups[-1][-1][1] < long_pause:
            groups[-1].append(span)
        else:
            groups.append([span])
    for group in groups:
        voiced = sum(int(np.count_nonzero(probs[a:b] >= POLICY.speech_threshold)) for a, b in group)
        click = voiced < POLICY.min_speech * PER_SECOND
        for start, end in group:
            for frame in range(start, end):
                sample = frame * FRAME + FRAME // 2
                covered = any(a <= sample < b for a, b in ranges)
                assert covered or click, f"speech frame {frame} is in no window"


def test_a_click_far_from_speech_is_not_decoded() -> None:
    probs = _probs([(3.0, 0.0), (0.064, 0.9), (4.0, 0.0), (2.0, 0.9), (1.0, 0.0)])  # two frames, then speech
    ranges = speech_cut_points(probs, len(probs) * FRAME, POLICY)
    assert len(ranges) == 1 and ranges[0][0] / RATE > 6.5


def test_the_model_is_handed_the_frames_at_the_speech_threshold_not_the_hysteresis_span() -> None:
    probs = _probs([(1.0, 0.0), (1.0, 0.9), (0.5, 0.4), (1.0, 0.9), (1.0, 0.0)])
    total = len(probs) * FRAME
    assert speech_spans(probs, POLICY) == [(31, 109)]  # one span: 0.4 never falls below 0.35
    voiced = [(a / RATE, b / RATE) for a, b in voiced_ranges(probs, total, POLICY)]
    assert len(voiced) == 2 and voiced[0][1] < voiced[1][0]  # the 0.4 stretch is not speech to the model


def test_voiced_ranges_are_padded_within_the_audio_and_merged() -> None:
    assert padded([(100, 200), (250, 260), (450, 500), (900, 990)], 100, 1000) == [(0, 600), (800, 1000)]
    assert padded([], 100, 1000) == []
    assert SpeechCutPolicy().speech_pad == 0.0  # off by default: it cost the batch path 40 % of its speed
    with pytest.raises(ValueError, match="speech_pad"):
        SpeechCutPolicy(speech_pad=-0.1)


def test_the_policy_is_the_live_paths_speech_settings_and_refuses_nonsense() -> None:
    streaming = load_settings(None, env={"STREAM_APP_STREAMING__MAX_WINDOW": "15s"}).streaming
    policy = SpeechCutPolicy.from_streaming(streaming)
    assert (policy.max_seconds, policy.long_pause, policy.lead, policy.tail) == (15.0, 2.0, 0.4, 0.3)
    assert (policy.speech_threshold, policy.silence_threshold, policy.min_speech) == (0.5, 0.35, 0.1)
    with pytest.raises(ValueError, match="at least 1 s"):
        SpeechCutPolicy(max_seconds=0.01)
    with pytest.raises(ValueError, match="thresholds"):
        SpeechCutPolicy(speech_threshold=0.3, silence_threshold=0.4)
