from __future__ import annotations

import numpy as np

from stream_app.streaming.speech import FRAME, SpeechTrack


def test_pending_reads_whole_frames_and_pads_the_last_one_at_the_end() -> None:
    track = SpeechTrack()
    assert track.pending(1000, ended=False) == (0, FRAME)
    track.extend(np.array([0.1], np.float32), b"s1")
    assert track.pending(1000, ended=False) == (FRAME, FRAME)  # 488 samples: not a whole frame yet
    assert track.pending(1000, ended=True) == (FRAME, 2 * FRAME)
    track.extend(np.array([0.2], np.float32), b"s2")
    track.finish(1000)
    assert track.complete and track.pending(5000, ended=True) == (2 * FRAME, 2 * FRAME)
    assert track.model_state == b"s2"


def test_speech_spans_follow_the_threshold_on_the_stream_grid() -> None:
    track = SpeechTrack(origin=100)
    track.extend(np.array([0.1, 0.9, 0.8, 0.2, 0.7], np.float32), b"")
    assert track.speech_spans(100, 100 + 5 * FRAME, 0.5) == [
        (100 + FRAME, 100 + 3 * FRAME),
        (100 + 4 * FRAME, 100 + 5 * FRAME),
    ]
    assert track.voiced_samples(100, 100 + 5 * FRAME, 0.5) == 3 * FRAME
    assert track.speech_spans(100 + FRAME + 10, 100 + 2 * FRAME, 0.5) == [(100 + FRAME + 10, 100 + 2 * FRAME)]


def test_released_frames_are_forgotten_but_the_grid_stays() -> None:
    track = SpeechTrack()
    track.extend(np.arange(10, dtype=np.float32) / 10, b"")
    track.release_before(3 * FRAME + 5)
    assert track.first == 3 and track.frames == 10
    assert track.prob(2) == 0.0 and track.prob(3) == np.float32(0.3)
    assert track.known_until == 10 * FRAME
