from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from stream_app.audio.exceptions import AudioFileError
from stream_app.audio.files import decode_audio_file, read_native_audio
from stream_app.testing.tools import require_binary


@pytest.fixture
def tone_wav(tmp_path: Path) -> Path:
    t = np.arange(22_050) / 22_050
    frames = np.stack([0.4 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 440 * t)], axis=1)
    path = tmp_path / "tone.wav"
    soundfile.write(path, frames, 22_050, subtype="PCM_16")
    return path


def test_jfk_flac_native_and_16k(jfk_path: Path) -> None:
    native = read_native_audio(jfk_path)
    assert (native.sample_rate, native.channels) == (44_100, 2)
    assert native.duration == pytest.approx(11.0)
    mono16 = decode_audio_file(jfk_path)
    assert mono16.dtype == np.float32
    assert mono16.shape == (176_000,)
    assert 0.05 < float(np.sqrt(np.mean(mono16**2))) < 0.5


def test_wav_keeps_rate_and_channels(tone_wav: Path) -> None:
    native = read_native_audio(tone_wav)
    assert (native.sample_rate, native.channels, native.frames.shape[0]) == (22_050, 2, 22_050)
    mono16 = decode_audio_file(tone_wav)
    assert mono16.shape == (16_000,)
    assert float(np.max(np.abs(mono16))) == pytest.approx(0.3, abs=0.01)


def test_formats_libsndfile_cannot_read_go_through_pyav(tone_wav: Path, tmp_path: Path) -> None:
    require_binary("ffmpeg")
    m4a = tmp_path / "tone.m4a"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", str(tone_wav), "-c:a", "aac", "-b:a", "96k", str(m4a)],
        check=True,
    )
    with pytest.raises(soundfile.LibsndfileError):
        soundfile.info(str(m4a))
    native = read_native_audio(m4a)
    assert (native.sample_rate, native.channels) == (22_050, 2)
    assert native.duration == pytest.approx(1.0, abs=0.1)
    assert decode_audio_file(m4a).shape[0] == pytest.approx(16_000, abs=1_600)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match="no such file"):
        decode_audio_file(tmp_path / "absent.flac")


def test_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "noise.flac"
    path.write_bytes(b"this is not audio at all" * 100)
    with pytest.raises(AudioFileError, match=r"noise\.flac"):
        decode_audio_file(path)


def test_empty_audio_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    soundfile.write(path, np.zeros((0, 1)), 16_000)
    with pytest.raises(AudioFileError, match="no audio samples"):
        read_native_audio(path)


def test_a_name_that_is_not_utf8_is_read_by_libsndfile_and_by_pyav(tone_wav: Path, tmp_path: Path) -> None:
    require_binary("ffmpeg")
    odd = os.fsencode(tmp_path) + b"/m\xe9lange"
    os.link(tone_wav, odd + b".wav")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", tone_wav, "-c:a", "aac", odd + b".m4a"], check=True)
    wav = read_native_audio(os.fsdecode(odd + b".wav"))  # a str with a surrogate, as os.listdir gives it
    assert (wav.sample_rate, wav.channels, wav.frames.shape[0]) == (22_050, 2, 22_050)
    m4a = read_native_audio(Path(os.fsdecode(odd + b".m4a")))
    assert (m4a.sample_rate, m4a.channels) == (22_050, 2)
    assert m4a.duration == pytest.approx(1.0, abs=0.1)


def test_a_path_that_is_not_a_readable_file_says_why(tmp_path: Path) -> None:
    (tmp_path / "loop.wav").symlink_to(tmp_path / "loop.wav")
    with pytest.raises(AudioFileError, match="symbolic links"):
        read_native_audio(tmp_path / "loop.wav")
    with pytest.raises(AudioFileError, match="a folder"):
        read_native_audio(tmp_path)
    os.mkfifo(tmp_path / "pipe.wav")
    with pytest.raises(AudioFileError, match="not a regular file"):  # opening it would wait for a writer
        read_native_audio(tmp_path / "pipe.wav")
