from __future__ import annotations

import numpy as np
import pytest

from stream_app.audio.files import decode_audio_file
from stream_app.inference import vad
from stream_app.inference.vad import FRAME, STATE_BYTES, SpeechDetector, speech_spans
from stream_app.testing.corpus import SAMPLE_RATE

JFK = "stream_app/samples/jfk.flac"


@pytest.fixture(scope="module")
def detector() -> SpeechDetector:
    return SpeechDetector()


def test_reading_a_stream_in_pieces_gives_the_probabilities_of_one_read(detector: SpeechDetector) -> None:
    audio = decode_audio_file(JFK)
    audio = audio[: len(audio) // FRAME * FRAME]
    whole, _ = detector(audio)
    rng = np.random.default_rng(3)
    state, parts, position = b"", [], 0
    while position < len(audio):
        frames = int(rng.integers(1, 20))
        piece = audio[position : position + frames * FRAME]
        probs, state = detector(piece, state)
        parts.append(probs)
        position += frames * FRAME
    assert len(state) == STATE_BYTES
    assert np.array_equal(np.concatenate(parts), whole)


def test_speech_is_found_where_it_is_and_not_in_silence(detector: SpeechDetector) -> None:
    audio = decode_audio_file(JFK)
    padded = np.concatenate([np.zeros(2 * SAMPLE_RATE, np.float32), audio])
    spans = speech_spans(detector.whole(padded), 0.5, min_samples=FRAME * 3)
    assert spans and spans[0][0] >= 2 * SAMPLE_RATE
    assert sum(b - a for a, b in spans) > 5 * SAMPLE_RATE


def test_the_detector_refuses_partial_frames_and_foreign_state(detector: SpeechDetector) -> None:
    with pytest.raises(ValueError, match="whole 512"):
        detector(np.zeros(100, np.float32))
    with pytest.raises(ValueError, match="state"):
        detector(np.zeros(FRAME, np.float32), b"xx")


def test_a_whole_recording_is_read_in_runs_with_the_probabilities_of_one_read(
    detector: SpeechDetector, monkeypatch: pytest.MonkeyPatch
) -> None:
    audio = decode_audio_file(JFK)[: 100 * FRAME + 77]  # a partial last frame, padded
    padded = np.concatenate([audio, np.zeros(FRAME - 77, np.float32)])
    one_read, _ = detector(padded)
    monkeypatch.setattr(vad, "WHOLE_RUN_FRAMES", 7)  # an hour-long file is read 10,000 frames at a time
    assert np.array_equal(detector.whole(audio), one_read)
    assert detector.whole(np.zeros(0, np.float32)).shape == (0,)
