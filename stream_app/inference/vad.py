"""Silero VAD run incrementally: each stream's audio is read once, its recurrent state carried along.

faster-whisper's ``SileroVADModel`` reads a whole file in one call: 512-sample frames, each with the
64 samples before it as context, through an ONNX graph that carries an LSTM state from frame to frame.
Here the same graph reads a stream a few frames at a time and hands the state (the LSTM's ``h`` and
``c`` and the last 64 samples) back to the caller, who stores it with the stream. Reading a stream in
any number of calls gives bit-identical probabilities to one call over all of it
(``tests/unit/inference/test_vad.py``), so a stream's speech decisions never depend on its chunking.

One detector serves every stream of a process: the ONNX session is thread-safe, runs one thread per
call and releases the GIL, so the worker reads many streams in parallel threads.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

FRAME = 512
WHOLE_RUN_FRAMES = 10_000  # frames per call when reading a whole recording (faster-whisper reads as many)
CONTEXT = 64
_STATE_FLOATS = 128 + 128 + CONTEXT  # h, c, the last samples of the previous frame
STATE_BYTES = 4 * _STATE_FLOATS

Samples = npt.NDArray[np.float32]


class SpeechDetector:
    """Speech probabilities per 512-sample frame, continuing from a stored state."""

    def __init__(self) -> None:
        """Load faster-whisper's bundled Silero model (no download)."""
        from faster_whisper.vad import get_vad_model

        self._session: Any = get_vad_model().session
        self._lock = threading.Lock()

    def __call__(self, samples: Samples, state: bytes = b"") -> tuple[Samples, bytes]:
        """Return the probabilities of ``samples`` (whole frames) and the state after them."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if samples.shape[0] % FRAME:
            raise ValueError(f"the detector reads whole {FRAME}-sample frames, got {samples.shape[0]} samples")
        h, c, context = _unpack(state)
        if samples.shape[0] == 0:
            return np.zeros(0, np.float32), _pack(h, c, context)
        frames = samples.reshape(-1, FRAME)
        before = np.concatenate([context[None, :], frames[:-1, -CONTEXT:]], axis=0)
        batch = np.concatenate([before, frames], axis=1)
        output, h, c = self._session.run(None, {"input": batch, "h": h, "c": c})
        probs = np.asarray(output, dtype=np.float32).reshape(-1)
        return probs, _pack(h, c, frames[-1, -CONTEXT:])

    def whole(self, samples: Samples) -> Samples:
        """Probabilities of a whole recording from a fresh state (its last partial frame padded).

        Read `WHOLE_RUN_FRAMES` frames per call, the state carried: the same probabilities as one
        call, without an input (and graph tensors) the size of an hour-long file.
        """
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        padded = -(-samples.shape[0] // FRAME) * FRAME
        if padded > samples.shape[0]:
            samples = np.concatenate([samples, np.zeros(padded - samples.shape[0], np.float32)])
        runs: list[Samples] = []
        state = b""
        step = WHOLE_RUN_FRAMES * FRAME
        for start in range(0, samples.shape[0], step):
            probs, state = self(samples[start : start + step], state)
            runs.append(probs)
        return np.concatenate(runs) if runs else np.zeros(0, np.float32)


def _unpack(state: bytes) -> tuple[Samples, Samples, Samples]:
    if not state:
        return np.zeros((1, 1, 128), np.float32), np.zeros((1, 1, 128), np.float32), np.zeros(CONTEXT, np.float32)
    if len(state) != STATE_BYTES:
        raise ValueError(f"a detector state is {STATE_BYTES} bytes, got {len(state)}")
    values = np.frombuffer(state, dtype="<f4")
    return (
        values[:128].reshape(1, 1, 128).copy(),
        values[128:256].reshape(1, 1, 128).copy(),
        values[256:].copy(),
    )


def _pack(h: Samples, c: Samples, context: Samples) -> bytes:
    return np.concatenate(
        [np.asarray(h, "<f4").reshape(-1), np.asarray(c, "<f4").reshape(-1), np.asarray(context, "<f4").reshape(-1)]
    ).tobytes()


@functools.cache
def shared_detector() -> SpeechDetector:
    """Return the process's one detector (loaded on first use)."""
    return SpeechDetector()


def speech_spans(
    probs: Samples, threshold: float = 0.5, min_samples: int = 0, origin: int = 0
) -> list[tuple[int, int]]:
    """Return the runs of frames at or above ``threshold`` as sample spans (shorter than ``min_samples``: dropped)."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for i, p in enumerate(np.asarray(probs).reshape(-1)):
        if p >= threshold and start is None:
            start = i
        elif p < threshold and start is not None:
            spans.append((origin + start * FRAME, origin + i * FRAME))
            start = None
    if start is not None:
        spans.append((origin + start * FRAME, origin + len(probs) * FRAME))
    return [(a, b) for a, b in spans if b - a >= min_samples]
