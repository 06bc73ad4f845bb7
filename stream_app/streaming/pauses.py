"""A cheap, deterministic pause detector: where a window can be cut without cutting a word.

The audio is read as 20 ms frames (320 samples at 16 kHz) aligned on the window's first sample. A
frame is silent when its RMS is below ``max(ratio * level, floor)``, ``level`` being the window's
speech level (the 95th percentile of its frame RMS, so a click does not raise it). A pause is a run
of silent frames at least ``min_pause`` long. Only numpy arithmetic on the given samples is involved:
the same samples give the same pauses, whatever the chunking of the stream they came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FRAME = 320  # 20 ms at 16 kHz
LEVEL_PERCENTILE = 95.0


@dataclass(frozen=True)
class Pause:
    """A silent run, in samples from the start of the analysed audio."""

    start: int
    length: int

    @property
    def end(self) -> int:
        """Just after the pause's last silent sample: where the next speech begins."""
        return self.start + self.length

    @property
    def middle(self) -> int:
        """Where to cut: as far as possible from the speech on both sides."""
        return self.start + self.length // 2


def frame_levels(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """RMS of each whole 20 ms frame (a partial last frame is left out)."""
    count = int(samples.shape[0]) // FRAME
    frames = samples[: count * FRAME].astype(np.float64).reshape(count, FRAME)
    levels: npt.NDArray[np.float64] = np.sqrt(np.mean(frames * frames, axis=1))
    return levels


def speech_level(levels: npt.NDArray[np.float64]) -> float:
    """Estimate what speech in this audio sounds like: the loud end of the frame levels (0 for none)."""
    return float(np.percentile(levels, LEVEL_PERCENTILE)) if levels.size else 0.0


def silence_threshold(level: float, ratio: float, floor: float) -> float:
    """Frame RMS below which a frame counts as silence."""
    return max(ratio * level, floor)


def is_silent(samples: npt.NDArray[np.float32], threshold: float) -> bool:
    """Tell whether no frame of ``samples`` (its partial last frame included) reaches ``threshold``."""
    if samples.shape[0] == 0:
        return True
    levels = frame_levels(samples)
    rest = samples[levels.size * FRAME :].astype(np.float64)
    loudest = float(levels.max()) if levels.size else 0.0
    if rest.size:
        loudest = max(loudest, float(np.sqrt(np.mean(rest * rest))))
    return loudest < threshold


def find_pauses(silent: npt.NDArray[np.bool_], min_frames: int) -> list[Pause]:
    """List the runs of at least ``min_frames`` silent frames, positioned in samples."""
    edges = np.diff(np.concatenate(([0], silent.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    return [
        Pause(int(a) * FRAME, int(b - a) * FRAME) for a, b in zip(starts, stops, strict=True) if b - a >= min_frames
    ]


def find_pause(
    samples: npt.NDArray[np.float32],
    search_from: int,
    *,
    min_pause: int,
    ratio: float,
    floor: float,
) -> tuple[Pause | None, float]:
    """Find the pause to cut ``samples`` at: the longest one after ``search_from`` (latest on ties).

    Returns the pause (positions are indices into ``samples``; ``None`` when no pause is long
    enough) and the speech level of ``samples``, which the caller keeps to judge the stream's end.
    """
    levels = frame_levels(samples)
    level = speech_level(levels)
    first = -(-search_from // FRAME)
    silent = levels[first:] < silence_threshold(level, ratio, floor)
    pauses = find_pauses(silent, -(-min_pause // FRAME))
    if not pauses:
        return None, level
    best = max(pauses, key=lambda p: (p.length, p.start))
    return Pause(first * FRAME + best.start, best.length), level


def first_pause_after_speech(
    samples: npt.NDArray[np.float32],
    *,
    checked_until: int,
    min_speech: int,
    min_pause: int,
    grid: int,
    ratio: float,
    floor: float,
) -> tuple[int | None, int, float]:
    """Find where an utterance ends: the first pause of ``min_pause`` after ``min_speech`` samples.

    The audio is examined at grid points (``grid``, ``2 * grid``, ... samples from its start), each
    time as if it ended there: the speech level of ``samples[:point]`` sets the silence threshold, and
    a run of at least ``min_pause`` silent samples starting at or after ``min_speech`` ends the
    utterance. Points up to ``checked_until`` were examined before and are skipped. Only samples
    before a point decide what happens at it, so the answer depends on the audio alone, never on how
    it was chunked or when it is asked.

    Returns:
        ``(pause start or None, last point examined, speech level there)``.
    """
    levels = frame_levels(samples)
    min_frames = -(-min_pause // FRAME)
    first_frame = -(-min_speech // FRAME)
    point = max(checked_until + grid, (min_speech + min_pause + grid - 1) // grid * grid)
    level, examined = 0.0, checked_until
    while point <= samples.shape[0]:
        examined = point
        frames = levels[: point // FRAME]
        level = speech_level(frames)
        if level > floor:
            silent = frames[first_frame:] < silence_threshold(level, ratio, floor)
            runs = find_pauses(silent, min_frames)
            if runs:
                return first_frame * FRAME + runs[0].start, point, level
        point += grid
    return None, examined, level
