"""The speech map a batch window hands the real model, padded on request so that the soft ends of words are decoded."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile

from stream_app.audio.files import decode_audio_file
from stream_app.batch import transcribe_batch
from stream_app.batch.model import load_transcriber
from stream_app.batch.packing import PackingPolicy
from stream_app.config import Settings
from stream_app.inference.transcriber import WhisperTranscriber


@pytest.fixture(scope="module")
def tiny(settings: Settings) -> WhisperTranscriber:
    assert settings.optimization.model == "tiny.en"  # bundled: no download
    return load_transcriber(settings)


def test_jfk_said_four_times_keeps_every_americans_ask_not(
    tmp_path: Path, settings: Settings, tiny: WhisperTranscriber, jfk_path: Path
) -> None:
    # Cut by its speech, the second window ends in "... and so my fellow Americans, ask not" spoken softly:
    # Silero's frames at the threshold cover under 0.3 s of it, and with that bare map the model stopped
    # after "fellow" and nothing said speech was left (faster-whisper's own VAD pads 400 ms and heard it).
    speech = decode_audio_file(jfk_path)
    soundfile.write(tmp_path / "jfk4.wav", np.tile(speech, 4), 16000, subtype="PCM_24")  # as the report had it
    packing = PackingPolicy.from_settings(settings)
    padded = dataclasses.replace(packing, speech=dataclasses.replace(packing.speech, speech_pad=0.4))
    result = transcribe_batch([tmp_path / "jfk4.wav"], settings=settings, output=None, transcriber=tiny, packing=padded)
    (record,) = result.results
    assert record.status == "ok" and result.windows >= 3
    text = re.sub(r"[^a-z ]", "", record.text.lower())
    assert text.count("americans") == 4
    assert text.count("ask not") == 4
