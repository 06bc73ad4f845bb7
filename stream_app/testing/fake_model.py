"""A voice detector and a Whisper stand-in that know the true words: the streaming logic tested alone.

`LoudnessDetector` calls a 512-sample frame voiced when its RMS clears a floor, whatever its level, so a
quiet speaker is as audible as a loud one (Silero behaves so, which is the point of using it).
`TruthTranscriber` answers a decode with the true words of its span that follow the decoder prefix,
the way Whisper would: a word cut by the end of the span comes back truncated, one with 50 ms or less
after the span's start is not heard, times jitter by a fixed pseudo-random amount per decode (up to
``jitter`` seconds), and hooks can revise, reject or fail a decode. Everything is a function of its
inputs, so a replay gives the same answers.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from stream_app.inference.types import DecodeKind, WindowTranscript, Word
from stream_app.streaming.session import DecodeRequest
from stream_app.streaming.speech import FRAME
from stream_app.streaming.text import normalise
from stream_app.wire.chunk import SAMPLE_RATE, AudioChunk

Samples = npt.NDArray[np.float32]


class LoudnessDetector:
    """Speech probability 0.9 for a frame whose RMS reaches ``floor``, else 0.05; no state."""

    def __init__(self, floor: float = 1e-3) -> None:
        self.floor = floor
        self.calls = 0

    def __call__(self, samples: Samples, state: bytes = b"") -> tuple[Samples, bytes]:
        """Return each frame's probability and the (empty) state."""
        self.calls += 1
        frames = np.asarray(samples, np.float32).reshape(-1, FRAME)
        rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
        return np.where(rms >= self.floor, 0.9, 0.05).astype(np.float32), b""


def speech_audio(words: Sequence[Word], seconds: float, *, level: float = 0.1, seed: int = 0) -> Samples:
    """Noise bursts where the words are, digital silence elsewhere (``level`` is each word's RMS)."""
    rng = np.random.default_rng(seed)
    audio = np.zeros(round(seconds * SAMPLE_RATE), np.float32)
    for word in words:
        a, b = round(word.start * SAMPLE_RATE), round(word.end * SAMPLE_RATE)
        audio[a:b] = (rng.standard_normal(b - a) * level).astype(np.float32)
    return audio


def chunks_of(
    audio: Samples, stream_id: str = "s", chunk_seconds: float = 0.1, *, eos: bool = True
) -> list[AudioChunk]:
    """Cut audio into chunks with sequence numbers and offsets; the last carries end of stream."""
    size = max(1, round(chunk_seconds * SAMPLE_RATE))
    starts = list(range(0, max(1, len(audio)), size))
    return [
        AudioChunk(stream_id, seq, offset, audio[offset : offset + size], end_of_stream=eos and seq == len(starts) - 1)
        for seq, offset in enumerate(starts)
    ]


def word_sequence(spec: Sequence[tuple[float, float, str]]) -> list[Word]:
    """Words from ``(start, end, text)`` triples."""
    return [Word(float(a), float(b), text, 0.9) for a, b, text in spec]


Revision = Callable[[DecodeRequest, list[Word]], list[Word]]


@dataclass
class TruthTranscriber:
    """Whisper knowing the truth; see the module docstring.

    ``revise`` may change a decode's words; ``reject`` makes the guards distrust a decode (a tick's or
    preview's is dropped, a cut's is kept: the real transcriber re-runs those); ``fail`` raises.
    """

    truth: list[Word]
    jitter: float = 0.0
    revise: Revision | None = None
    reject: Callable[[DecodeRequest], bool] | None = None
    fail: Callable[[DecodeRequest], bool] | None = None
    log: list[tuple[str, int, int, str]] = field(default_factory=list)

    def __call__(self, request: DecodeRequest) -> WindowTranscript:
        """Answer one decode with the true words."""
        if self.fail is not None and self.fail(request):
            raise RuntimeError(f"decode {request.number} failed on purpose")
        words = self.words(request)
        if self.revise is not None:
            words = self.revise(request, words)
        rejected = request.kind is not DecodeKind.CUT and self.reject is not None and self.reject(request)
        self.log.append((request.kind.value, request.start, request.stop, " ".join(w.text for w in words)))
        return WindowTranscript(
            words=() if rejected else tuple(words),
            text=" ".join(w.text for w in words),
            avg_logprob=-0.2,
            no_speech_prob=0.05,
            compression_ratio=1.3,
            model="truth",
            precision="exact",
            rejected_preview=rejected,
        )

    def words(self, request: DecodeRequest) -> list[Word]:
        """Return the true words of the span after the prefix: whole ones, and the one the span's end cuts.

        A free decode (the request does not force the prefix) hears the prefix's words again as well.
        """
        start, stop = request.start / SAMPLE_RATE, request.stop / SAMPLE_RATE
        after = self._after_prefix(request.prefix) if request.forced else 0
        out: list[Word] = []
        shift = self._jitter(request)
        for word in self.truth[after:]:
            if word.end <= start + 0.05:  # at most 50 ms of it after the span's start: too little to be heard
                continue
            if word.start >= stop:
                break
            if word.end <= stop + 1e-9:
                out.append(_moved(word, shift, start, stop))
            elif word.start < stop - 0.05 and request.kind is not DecodeKind.CUT:
                heard = (stop - word.start) / (word.end - word.start)
                cut = max(1, int(len(word.text) * heard))
                out.append(_moved(Word(word.start, stop, word.text[:cut], word.probability), shift, start, stop))
            elif word.start < stop:
                out.append(
                    _moved(Word(word.start, min(word.end, stop), word.text, word.probability), shift, start, stop)
                )
        return out

    def _after_prefix(self, prefix: Sequence[Word]) -> int:
        """Index of the first true word the prefix does not hold (the prefix ends on a true word)."""
        if not prefix:
            return 0
        last = prefix[-1]
        near = [
            i
            for i, w in enumerate(self.truth)
            if normalise(w.text) == normalise(last.text) and abs(w.end - last.end) <= 1.0
        ]
        if near:
            return min(near, key=lambda i: abs(self.truth[i].end - last.end)) + 1
        # a revised word (not in the truth): the decoder goes on after where it ended
        return next((i for i, w in enumerate(self.truth) if w.start >= last.end - 0.05), len(self.truth))

    def _jitter(self, request: DecodeRequest) -> float:
        if not self.jitter:
            return 0.0
        seed = zlib.crc32(f"{request.kind.value}:{request.start}:{request.stop}".encode())
        return (seed % 2001 - 1000) / 1000 * self.jitter


def _moved(word: Word, shift: float, start: float, stop: float) -> Word:
    a = min(max(start, word.start + shift), stop)
    b = min(max(a + 0.01, word.end + shift), stop)
    return Word(round(a, 3), round(b, 3), word.text, word.probability)
