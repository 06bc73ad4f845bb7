"""Long, distinct speech streams made from the synthetic corpus, cut into chunks as they are sent.

Each stream has its own espeak-ng voice and speed and its own order of the corpus sentences, with
pauses of varying length between them, looped until it lasts the time asked for. Nothing is held
whole: the chunks are cut from one utterance at a time, so thirty ten-minute streams cost the memory
of their utterances, not of their audio. The same script always gives the same samples (the noise
floor is seeded per piece), so two runs of a benchmark send identical audio.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from stream_app.audio.pcm import float_to_pcm
from stream_app.clients.chunking import PlannedChunk
from stream_app.testing.corpus import SAMPLE_RATE, SENTENCES, SPEEDS, VOICES, require_tools, speak
from stream_app.wire.chunk import ChunkFormat

FORMAT = ChunkFormat("s16le", SAMPLE_RATE, 1)
NOISE_LEVEL = 0.003
LEAD_SECONDS = 0.3
Utterance = tuple[int, int, int]  # (sentence, voice, speed) indexes into the corpus tables


@dataclass(frozen=True)
class SpeechScript:
    """What one stream says: utterances in order, each followed by a pause (seconds)."""

    stream_id: str
    utterances: tuple[Utterance, ...]
    pauses: tuple[float, ...]
    seed: int

    @property
    def text(self) -> str:
        """What is said, for WER against the script."""
        return " ".join(SENTENCES[u[0]] for u in self.utterances)

    def pieces(self, library: UtteranceLibrary) -> Iterator[npt.NDArray[np.float32]]:
        """Yield the stream's audio piece by piece: a lead-in, then each utterance and its pause."""
        yield self._noisy(np.zeros(round(LEAD_SECONDS * SAMPLE_RATE), np.float32), 0)
        for index, (utterance, pause) in enumerate(zip(self.utterances, self.pauses, strict=True)):
            speech = library.get(utterance) * np.float32(0.8)
            silence = np.zeros(round(pause * SAMPLE_RATE), np.float32)
            yield self._noisy(np.concatenate([speech, silence]), index + 1)

    def frames(self, library: UtteranceLibrary) -> int:
        """Total samples of the stream."""
        lead = round(LEAD_SECONDS * SAMPLE_RATE)
        pauses = sum(round(p * SAMPLE_RATE) for p in self.pauses)
        return lead + pauses + sum(int(library.get(u).shape[0]) for u in self.utterances)

    def duration(self, library: UtteranceLibrary) -> float:
        """Length of the stream in seconds."""
        return self.frames(library) / SAMPLE_RATE

    def chunks(self, library: UtteranceLibrary, chunk_ms: float) -> Iterator[PlannedChunk]:
        """Cut the stream into 16 kHz mono s16le chunks of ``chunk_ms``; the last one ends the stream."""
        return cut_chunks(self.pieces(library), self.frames(library), chunk_ms)

    def chunk_count(self, library: UtteranceLibrary, chunk_ms: float) -> int:
        """Return the number of chunks `chunks` yields."""
        step = max(1, round(SAMPLE_RATE * chunk_ms / 1000))
        return -(-self.frames(library) // step)

    def _noisy(self, audio: npt.NDArray[np.float32], piece: int) -> npt.NDArray[np.float32]:
        rng = np.random.default_rng([self.seed, piece])
        noise = np.asarray(rng.normal(0.0, NOISE_LEVEL, audio.shape[0]), dtype=np.float32)
        return np.asarray(np.clip(audio + noise, -1.0, 1.0), dtype=np.float32)


def cut_chunks(pieces: Iterable[npt.NDArray[np.float32]], total: int, chunk_ms: float) -> Iterator[PlannedChunk]:
    """Cut consecutive audio pieces (``total`` samples in all) into chunks, numbered from 0."""
    step = max(1, round(SAMPLE_RATE * chunk_ms / 1000))
    pending = np.zeros(0, np.float32)
    seq, offset = 0, 0
    for piece in pieces:
        pending = np.concatenate([pending, piece])
        while pending.shape[0] >= step and offset + step < total:
            yield _chunk(pending[:step], seq, offset, total)
            pending, seq, offset = pending[step:], seq + 1, offset + step
    while pending.shape[0]:
        yield _chunk(pending[:step], seq, offset, total)
        pending, seq, offset = pending[step:], seq + 1, offset + min(step, pending.shape[0])


def _chunk(samples: npt.NDArray[np.float32], seq: int, offset: int, total: int) -> PlannedChunk:
    count = int(samples.shape[0])
    return PlannedChunk(
        seq=seq,
        offset=offset,
        pcm=float_to_pcm(samples.reshape(-1, 1), FORMAT.encoding),
        end_of_stream=offset + count >= total,
        start=offset / SAMPLE_RATE,
        duration=count / SAMPLE_RATE,
    )


class UtteranceLibrary:
    """Each (sentence, voice, speed) synthesised once and cached as ``.npy`` in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._audio: dict[Utterance, npt.NDArray[np.float32]] = {}

    def get(self, utterance: Utterance) -> npt.NDArray[np.float32]:
        """Return the utterance's 16 kHz mono samples (synthesised on first use)."""
        audio = self._audio.get(utterance)
        if audio is None:
            audio = self._load(utterance)
            self._audio[utterance] = audio
        return audio

    def seconds(self, utterance: Utterance) -> float:
        """Return the utterance's length in seconds."""
        return int(self.get(utterance).shape[0]) / SAMPLE_RATE

    def prepare(self, utterances: Iterable[Utterance], threads: int = 2) -> None:
        """Synthesise or load every utterance now, ``threads`` espeak-ng processes at a time."""
        require_tools()
        wanted = sorted(set(utterances) - set(self._audio))
        with ThreadPoolExecutor(threads) as pool:
            for utterance, audio in zip(wanted, pool.map(self._load, wanted), strict=True):
                self._audio[utterance] = audio

    def _load(self, utterance: Utterance) -> npt.NDArray[np.float32]:
        sentence, voice, speed = utterance
        path = self.folder / f"u-{sentence}-{voice}-{speed}.npy"  # the naming bench.common's cache uses
        if path.is_file():
            return np.asarray(np.load(path), dtype=np.float32)
        audio = speak(SENTENCES[sentence], VOICES[voice], SPEEDS[speed])
        self.folder.mkdir(parents=True, exist_ok=True)
        np.save(path, audio)
        return audio


def stream_voice(index: int) -> tuple[int, int]:
    """Return the (voice, speed) of stream ``index``: the first 24 streams differ in one or the other."""
    return index % len(VOICES), (index // len(VOICES)) % len(SPEEDS)


def voice_utterances(streams: int) -> list[Utterance]:
    """Every utterance the first ``streams`` scripts can use (each sentence in each stream's voice)."""
    voices = sorted({stream_voice(i) for i in range(streams)})
    return [(sentence, voice, speed) for voice, speed in voices for sentence in range(len(SENTENCES))]


def plan_scripts(
    streams: int,
    seconds: float,
    *,
    seed: int = 10,
    prefix: str = "speech",
    length: Callable[[Utterance], float] | None = None,
    long_pauses: float = 0.15,
) -> list[SpeechScript]:
    """Plan ``streams`` distinct scripts of at least ``seconds`` each.

    Stream ``i`` speaks in `stream_voice` ``(i)``, with its own sentence order, looped as needed.
    ``length`` gives an utterance's seconds (``UtteranceLibrary.seconds`` once `voice_utterances` were
    prepared); without it each counts 3.6 s, an estimate. A share ``long_pauses`` of the pauses lasts
    2-3.5 s, the others 0.4-1.2 s.
    """
    scripts = []
    for index in range(streams):
        rng = np.random.default_rng([seed, index])
        voice, speed = stream_voice(index)
        utterances: list[Utterance] = []
        pauses: list[float] = []
        expected = LEAD_SECONDS
        while expected < seconds or not utterances:
            for sentence in rng.permutation(len(SENTENCES)):
                long_pause = rng.random() < long_pauses
                pause = float(rng.uniform(2.0, 3.5) if long_pause else rng.uniform(0.4, 1.2))
                utterance = (int(sentence), voice, speed)
                utterances.append(utterance)
                pauses.append(round(pause, 3))
                expected += (3.6 if length is None else length(utterance)) + pause
                if expected >= seconds:
                    break
        scripts.append(SpeechScript(f"{prefix}-{index:03d}", tuple(utterances), tuple(pauses), seed * 1000 + index))
    return scripts
