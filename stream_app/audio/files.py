"""Audio files to samples: at their native rate and channels (for publishing) or as 16 kHz mono.

libsndfile (soundfile) reads wav, flac, ogg and mp3 exactly; anything else (m4a, aac, opus in
containers, video files) goes through PyAV, which ships its own FFmpeg and works offline.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
import numpy.typing as npt
import soundfile

from stream_app.audio.exceptions import AudioFileError
from stream_app.audio.pcm import downmix, resample_whole

Float32Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class NativeAudio:
    """A file's audio as stored: float32 frames of shape ``(frames, channels)`` at ``sample_rate``."""

    frames: Float32Array
    sample_rate: int

    @property
    def channels(self) -> int:
        """Number of interleaved channels."""
        return int(self.frames.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return int(self.frames.shape[0]) / self.sample_rate


def read_native_audio(path: str | Path) -> NativeAudio:
    r"""Read a whole audio file without changing its rate or channel count.

    The file is opened here and its handle given to the decoders, so a name that is not valid UTF-8
    (``b"m\xe9lange.wav"``, which neither libsndfile nor FFmpeg accept as a name) is read too.

    Raises:
        AudioFileError: the file is missing, not audio, or holds no samples.
    """
    file = Path(path)
    with _open(file) as handle:
        try:
            data, rate = soundfile.read(handle, dtype="float32", always_2d=True)
            audio = NativeAudio(np.ascontiguousarray(data, dtype=np.float32), int(rate))
        except (soundfile.LibsndfileError, RuntimeError, TypeError):
            handle.seek(0)
            audio = _read_with_pyav(file, handle)
    if audio.frames.shape[0] == 0:
        raise AudioFileError(file, "the file holds no audio samples")
    return audio


def decode_audio_file(path: str | Path) -> Float32Array:
    """Read an audio file as 16 kHz mono float32, the input Whisper expects.

    Raises:
        AudioFileError: the file is missing, not audio, or holds no samples.
    """
    audio = read_native_audio(path)
    return resample_whole(downmix(audio.frames), audio.sample_rate)


def _open(file: Path) -> BinaryIO:
    """Open ``file`` for reading; one that is missing, not a regular file or not readable is an `AudioFileError`."""
    try:
        mode = file.stat().st_mode
    except FileNotFoundError as exc:
        raise AudioFileError(file, "no such file") from exc
    except OSError as exc:  # a symlink loop, a name too long, no permission on a folder
        raise AudioFileError(file, exc.strerror or type(exc).__name__) from exc
    if stat.S_ISDIR(mode):
        raise AudioFileError(file, "a folder, not a file")
    if not stat.S_ISREG(mode):  # a pipe or a device: opening it could wait for ever
        raise AudioFileError(file, "not a regular file")
    try:
        return file.open("rb")
    except OSError as exc:
        raise AudioFileError(file, exc.strerror or type(exc).__name__) from exc


def _read_with_pyav(file: Path, handle: BinaryIO) -> NativeAudio:
    try:
        with av.open(handle, mode="r") as container:
            if not container.streams.audio:
                raise AudioFileError(file, "no audio stream in the file")
            stream = container.streams.audio[0]
            rate = int(stream.codec_context.sample_rate)
            layout = stream.codec_context.layout
            channels = len(layout.channels)
            if rate <= 0 or channels <= 0:
                raise AudioFileError(file, f"invalid audio stream (rate {rate}, {channels} channels)")
            resampler = av.AudioResampler(format="flt", layout=layout, rate=rate)
            pieces: list[Float32Array] = []
            for frame in container.decode(stream):
                pieces.extend(_packed(out, channels) for out in resampler.resample(frame))
            pieces.extend(_packed(out, channels) for out in resampler.resample(None))
    except AudioFileError:
        raise
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise AudioFileError(file, f"not a readable audio file ({exc})") from exc
    frames = np.concatenate(pieces) if pieces else np.zeros((0, channels), dtype=np.float32)
    return NativeAudio(np.ascontiguousarray(frames, dtype=np.float32), rate)


def _packed(frame: av.AudioFrame, channels: int) -> Float32Array:
    return np.asarray(frame.to_ndarray(), dtype=np.float32).reshape(-1, channels)
