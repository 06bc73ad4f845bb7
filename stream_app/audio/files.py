"""Audio files to samples: at their native rate and channels (for publishing) or as 16 kHz mono.

libsndfile (soundfile) reads wav, flac, ogg and mp3 exactly; anything else (m4a, aac, opus in
containers, video files) goes through PyAV, which ships its own FFmpeg and works offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
    """Read a whole audio file without changing its rate or channel count.

    Raises:
        AudioFileError: the file is missing, not audio, or holds no samples.
    """
    file = Path(path)
    if not file.is_file():
        raise AudioFileError(file, "no such file")
    try:
        data, rate = soundfile.read(str(file), dtype="float32", always_2d=True)
        audio = NativeAudio(np.ascontiguousarray(data, dtype=np.float32), int(rate))
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        audio = _read_with_pyav(file)
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


def _read_with_pyav(file: Path) -> NativeAudio:
    try:
        with av.open(str(file)) as container:
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
