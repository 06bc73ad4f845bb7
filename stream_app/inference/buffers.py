"""Reusable per-thread arrays for the batched path's log-mel features and padded encoder batch.

faster-whisper's ``FeatureExtractor`` allocates about a dozen arrays per window (padded audio,
frames, spectrum, magnitudes, mel, log) and the batched path then pads each window's features
to the encoder's input length (3000 frames, or fewer with a fitted context) and stacks them:
roughly 25 MB of short-lived numpy memory per 30 s window. Here
the same arithmetic, in the same order and memory layouts, writes into arrays a thread keeps
between calls, so the results are bit-identical and a warm thread allocates nothing per window.
"""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt

N_FFT = 400
HOP_LENGTH = 160
PADDING = 160  # trailing zeros FeatureExtractor appends before the STFT
N_FRAMES = 3000  # the encoder's input length: 30 s of 10 ms frames

Float32Array = npt.NDArray[np.float32]
Complex64Array = npt.NDArray[np.complex64]


def _grown(array: npt.NDArray[np.generic], rows: int) -> npt.NDArray[np.generic]:
    """Return the array if it holds ``rows`` already, else a larger empty one (spare room limits regrowth)."""
    if array.shape[0] >= rows:
        return array
    return np.empty((max(rows, array.shape[0] * 3 // 2), *array.shape[1:]), dtype=array.dtype)


class FeatureBuffers:
    """One thread's scratch arrays; they start empty and grow to the largest window and batch seen.

    Not thread-safe by design: ``FeatureBufferPool`` hands each thread its own.
    """

    def __init__(self, mel_filters: Float32Array) -> None:
        """Keep the model's mel filter bank ([n_mels, 201] float32, as ``FeatureExtractor`` builds it)."""
        self.mel_filters = np.ascontiguousarray(mel_filters, dtype=np.float32)
        self.n_mels = int(self.mel_filters.shape[0])
        self._window = np.hanning(N_FFT + 1)[:-1].astype("float32")
        self.audio: Float32Array = np.empty(0, np.float32)
        self.frames: Float32Array = np.empty((0, N_FFT), np.float32)
        self.spectrum: Complex64Array = np.empty((0, N_FFT // 2 + 1), np.complex64)
        self.magnitudes: Float32Array = np.empty((0, N_FFT // 2 + 1), np.float32)
        self.mel: Float32Array = np.empty(0, np.float32)
        self.batch: Float32Array = np.empty(0, np.float32)  # flat: viewed as [size, n_mels, frames]

    def log_mel(self, waveform: Float32Array) -> Float32Array:
        """``FeatureExtractor(waveform)`` bit for bit: the [n_mels, frames] log-mel, a view into a buffer.

        The view is overwritten by this thread's next call; copy it out (``write_features``) first.
        """
        waveform = np.asarray(waveform, dtype=np.float32).reshape(-1)
        padded = waveform.shape[0] + PADDING
        if padded <= N_FFT // 2 + 1:  # too short for a single reflection: numpy's own rule applies
            staged = np.pad(np.pad(waveform, (0, PADDING)), (N_FFT // 2, N_FFT // 2), mode="reflect")
        else:
            staged = self._staged(waveform, padded)
        n_frames = 1 + (staged.shape[0] - N_FFT) // HOP_LENGTH
        columns = np.lib.stride_tricks.as_strided(
            staged, (n_frames, N_FFT), (HOP_LENGTH * staged.strides[0], staged.strides[0]), writeable=False
        )
        self.frames = _grown(self.frames, n_frames)  # type: ignore[assignment]
        frames = np.multiply(columns, self._window, out=self.frames[:n_frames])
        self.spectrum = _grown(self.spectrum, n_frames)  # type: ignore[assignment]
        spectrum = np.fft.rfft(frames, n=N_FFT, axis=-1, out=self.spectrum[:n_frames])  # type: ignore[arg-type]
        kept = n_frames - 1  # FeatureExtractor drops the last STFT frame
        self.magnitudes = _grown(self.magnitudes, kept)  # type: ignore[assignment]
        magnitudes = np.abs(spectrum[:kept], out=self.magnitudes[:kept])
        np.square(magnitudes, out=magnitudes)
        if self.mel.shape[0] < self.n_mels * kept:
            self.mel = np.empty(max(self.n_mels * kept, self.mel.shape[0] * 3 // 2), np.float32)
        mel = self.mel[: self.n_mels * kept].reshape(self.n_mels, kept)
        np.matmul(self.mel_filters, magnitudes.T, out=mel)  # [frames, bins] transposed, as upstream
        np.clip(mel, 1e-10, None, out=mel)
        np.log10(mel, out=mel)
        np.maximum(mel, mel.max() - 8.0, out=mel)
        np.add(mel, 4.0, out=mel)
        np.divide(mel, 4.0, out=mel)
        return mel

    def _staged(self, waveform: Float32Array, padded: int) -> Float32Array:
        """Stage the waveform, PADDING zeros, and N_FFT/2 reflected samples on both sides, in one buffer."""
        edge = N_FFT // 2
        total = padded + 2 * edge
        if self.audio.shape[0] < total:
            self.audio = np.empty(max(total, self.audio.shape[0] * 3 // 2), np.float32)
        staged = self.audio[:total]
        body = staged[edge : edge + padded]
        body[: waveform.shape[0]] = waveform
        body[waveform.shape[0] :] = 0.0
        staged[:edge] = body[edge:0:-1]
        staged[edge + padded :] = body[padded - 2 : padded - 2 - edge : -1]
        return staged

    def batch_view(self, size: int, frames: int = N_FRAMES) -> Float32Array:
        """Return a C-contiguous [size, n_mels, frames] view of the batch buffer (contents undefined)."""
        needed = size * self.n_mels * frames
        if self.batch.shape[0] < needed:
            self.batch = np.empty(max(needed, self.batch.shape[0] * 3 // 2), np.float32)
        return self.batch[:needed].reshape(size, self.n_mels, frames)

    def write_features(self, batch: Float32Array, index: int, waveform: Float32Array) -> int:
        """Put one window's log-mel, zero-padded to the batch's frames, in ``batch[index]``; return its content frames.

        Content frames are the log-mel's frames less one, as ``WhisperModel.generate_segments`` counts them.
        """
        mel = self.log_mel(waveform)
        content = int(mel.shape[-1]) - 1
        used = min(content, int(batch.shape[-1]))
        batch[index, :, :used] = mel[:, :used]
        batch[index, :, used:] = 0.0
        return content


class FeatureBufferPool:
    """Hands each thread its own ``FeatureBuffers``, created on the thread's first call."""

    def __init__(self, mel_filters: Float32Array) -> None:
        """Share one mel filter bank across the threads' buffers."""
        self._mel_filters = np.ascontiguousarray(mel_filters, dtype=np.float32)
        self._local = threading.local()

    def get(self) -> FeatureBuffers:
        """Return the calling thread's buffers."""
        buffers: FeatureBuffers | None = getattr(self._local, "buffers", None)
        if buffers is None:
            buffers = FeatureBuffers(self._mel_filters)
            self._local.buffers = buffers
        return buffers
