"""Cutting files into Whisper windows and packing short pieces together, as pure logic.

Whisper's encoder always sees 30 s, so a 2 s file costs as much as a 30 s one. Packing several
short pieces into one window (with silence between them) and handing the words back by timestamp
amortises that cost, but then a file's text depends on its neighbours (the decoder reads the whole
window: punctuation and words were seen to change), so it is off unless asked for. By default a
file's pieces follow its speech (`stream_app.batch.speech_cuts`); `cut_points` is the fallback that
cuts at the quietest moment near each 30 s limit, so a cut rarely lands inside a word.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stream_app.batch.speech_cuts import SpeechCutPolicy
from stream_app.config.settings import Settings
from stream_app.inference.types import Word

SAMPLE_RATE = 16000
Samples = npt.NDArray[np.float32]


@dataclass(frozen=True)
class PackingPolicy:
    """How files become windows."""

    window_seconds: float = 30.0  # what one model call sees
    gap_seconds: float = 1.0  # silence between packed pieces: keeps words of neighbours apart
    search_seconds: float = 3.0  # how far back from a window's end to look for a quiet cut
    pack: bool = False  # True: short pieces of different files share windows (their text may then differ)
    follow_speech: bool = True  # windows follow the speech (`speech_cuts`); False: 30 s cuts at quiet moments
    speech: SpeechCutPolicy = dataclasses.field(default_factory=SpeechCutPolicy)

    @classmethod
    def from_settings(cls, settings: Settings, *, pack: bool = False) -> PackingPolicy:
        """Return the configured policy: windows that follow the speech as the live path hears it.

        The speech settings are `[streaming]`'s; with ``streaming.vad`` off, 30 s windows cut at quiet
        moments, silence decoded too.
        """
        speech = SpeechCutPolicy.from_streaming(settings.streaming)
        room = cls.window_seconds - speech.lead - speech.tail  # a piece must fit a window
        if speech.max_seconds > room:
            speech = dataclasses.replace(speech, max_seconds=max(1.0, room))
        return cls(pack=pack, follow_speech=settings.streaming.vad, speech=speech)

    @property
    def window_samples(self) -> int:
        """Samples one window holds."""
        return int(self.window_seconds * SAMPLE_RATE)

    @property
    def gap_samples(self) -> int:
        """Samples of silence between packed pieces."""
        return int(self.gap_seconds * SAMPLE_RATE)


def cut_points(samples: Samples, policy: PackingPolicy) -> list[tuple[int, int]]:
    """Split a file into ``(start, end)`` sample ranges no longer than a window.

    Each cut falls at the quietest 20 ms frame within ``search_seconds`` before the window limit.
    """
    total = len(samples)
    limit = policy.window_samples
    spans: list[tuple[int, int]] = []
    start = 0
    while total - start > limit:
        end = start + limit
        search = int(policy.search_seconds * SAMPLE_RATE)
        end = _quietest(samples, max(start + 1, end - search), end)
        spans.append((start, end))
        start = end
    if total > start:
        spans.append((start, total))
    return spans


def _quietest(samples: Samples, lo: int, hi: int) -> int:
    frame = SAMPLE_RATE // 50
    region = samples[lo:hi]
    count = len(region) // frame
    if count < 2:
        return hi
    energy = np.square(region[: count * frame].reshape(count, frame)).mean(axis=1)
    best = int(np.argmin(energy[::-1]))  # the latest of equally quiet frames keeps windows long
    return lo + (count - 1 - best) * frame + frame // 2


@dataclass(frozen=True)
class Piece:
    """One contiguous part of one file, placed in a window."""

    file_id: int
    piece_index: int
    file_offset: float  # where the piece starts in its file, seconds
    window_offset: float  # where the piece starts in the window, seconds
    duration: float
    speech: tuple[tuple[float, float], ...] | None = None  # voiced spans, seconds from the piece's start


@dataclass(frozen=True)
class Window:
    """Audio for one model call and the pieces it holds."""

    samples: Samples
    pieces: tuple[Piece, ...]

    @property
    def speech(self) -> tuple[tuple[float, float], ...] | None:
        """The pieces' voiced spans in window time; None when a piece's are not known (the model finds them)."""
        spans: list[tuple[float, float]] = []
        for piece in self.pieces:
            if piece.speech is None:
                return None
            spans += [(piece.window_offset + a, piece.window_offset + b) for a, b in piece.speech]
        return tuple(spans)


class WindowPacker:
    """Fills windows with pieces in arrival order; a window goes out when the next piece does not fit."""

    def __init__(self, policy: PackingPolicy) -> None:
        self._policy = policy
        self._parts: list[Samples] = []
        self._pieces: list[Piece] = []
        self._used = 0

    def add_file(
        self,
        file_id: int,
        samples: Samples,
        spans: Sequence[tuple[int, int]] | None = None,
        voiced: Sequence[tuple[int, int]] | None = None,
    ) -> Iterator[Window]:
        """Add a file's pieces (``spans``, default `cut_points`); yield every window that became full.

        ``voiced``: the file's speech as sample ranges, handed to the model with each piece (None: the
        model's own VAD finds it).
        """
        for index, (start, end) in enumerate(cut_points(samples, self._policy) if spans is None else spans):
            speech = None if voiced is None else _speech_within(voiced, start, end)
            yield from self._add(file_id, index, start, samples[start:end], speech)

    def flush(self) -> Iterator[Window]:
        """Yield the window being filled, if any."""
        if self._pieces:
            window = Window(np.concatenate(self._parts).astype(np.float32, copy=False), tuple(self._pieces))
            self._parts, self._pieces, self._used = [], [], 0
            yield window

    def _add(
        self, file_id: int, index: int, start: int, part: Samples, speech: tuple[tuple[float, float], ...] | None
    ) -> Iterator[Window]:
        gap = self._policy.gap_samples if self._pieces else 0
        if self._pieces and (not self._policy.pack or self._used + gap + len(part) > self._policy.window_samples):
            yield from self.flush()
            gap = 0
        if gap:
            self._parts.append(np.zeros(gap, dtype=np.float32))
            self._used += gap
        self._pieces.append(
            Piece(file_id, index, start / SAMPLE_RATE, self._used / SAMPLE_RATE, len(part) / SAMPLE_RATE, speech)
        )
        self._parts.append(part)
        self._used += len(part)


def _speech_within(voiced: Sequence[tuple[int, int]], start: int, end: int) -> tuple[tuple[float, float], ...]:
    """Return the voiced ranges inside ``[start, end)``, in seconds from ``start``."""
    return tuple(
        ((max(a, start) - start) / SAMPLE_RATE, (min(b, end) - start) / SAMPLE_RATE)
        for a, b in voiced
        if a < end and b > start
    )


def split_window(window: Window) -> list[Window]:
    """Return one window per piece of a packed window (to retry the pieces apart after it failed)."""
    out = []
    for piece in window.pieces:
        start = round(piece.window_offset * SAMPLE_RATE)
        end = start + round(piece.duration * SAMPLE_RATE)
        out.append(Window(window.samples[start:end], (dataclasses.replace(piece, window_offset=0.0),)))
    return out


def words_by_piece(words: Sequence[Word], window_start: float, window: Window, gap: float) -> list[list[Word]]:
    """Hand a window's words back to its pieces, re-timed to their files.

    A word belongs to the piece whose span (widened by half the gap on each side) holds its
    midpoint; ``window_start`` is the stream time the words were shifted by.
    """
    out: list[list[Word]] = [[] for _ in window.pieces]
    for word in words:
        middle = (word.start + word.end) / 2 - window_start
        for slot, piece in enumerate(window.pieces):
            if piece.window_offset - gap / 2 <= middle < piece.window_offset + piece.duration + gap / 2:
                out[slot].append(retime(word, piece.file_offset - piece.window_offset - window_start, piece))
                break
    return out


def retime(word: Word, shift: float, piece: Piece) -> Word:
    """Return ``word`` moved by ``shift`` seconds into its file's time, held within ``piece``'s span.

    A word the model placed in the gap after a packed piece (or past a window's audio) would otherwise
    end after its file does.
    """
    first, last = piece.file_offset, piece.file_offset + piece.duration
    return Word(
        start=round(min(max(first, word.start + shift), last), 3),
        end=round(min(max(first, word.end + shift), last), 3),
        text=word.text,
        probability=word.probability,
    )
