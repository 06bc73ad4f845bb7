"""Cutting a file into windows that follow its speech, as pure logic over speech probabilities.

A file cut every 30 s at its quietest moment makes every window a full 30 s encoder pass, decodes
its silences, and cuts wherever the limit falls. Here a file is read as the live path reads a
stream (Silero VAD, 32 ms frames, the same hysteresis): its speech spans are gathered into windows
of at most ``max_seconds``, each closed at the longest pause in its second half when the next span
would not fit, or at any pause of ``long_pause`` seconds. Silence between windows is not decoded, a
window keeps ``lead`` seconds before its first speech and ``tail`` after its last, and windows
shorter than 30 s cost a shorter encoder pass (the fitted encoder context). A single span of speech
longer than ``max_seconds`` is cut at its least speech-like frame in the last ``search`` seconds, and
a window with less than ``min_speech`` of voiced frames, a long pause away from any other speech
(a click), is not decoded at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stream_app.config.settings import StreamingSettings
from stream_app.inference import vad
from stream_app.inference.vad import FRAME


@dataclass(frozen=True)
class SpeechCutPolicy:
    """How speech spans become windows (seconds; thresholds as the live path's defaults)."""

    max_seconds: float = 20.0
    long_pause: float = 2.0
    lead: float = 0.4
    tail: float = 0.3
    search: float = 3.0
    speech_threshold: float = 0.5
    silence_threshold: float = 0.35
    min_speech: float = 0.1  # a window with less voiced audio is not decoded (a click, a breath)
    # Seconds each voiced range handed to the model is widened by on both sides (faster-whisper's own VAD
    # pads 400 ms). The bare frames at the threshold can miss a word's soft end, and the model then sees too
    # little speech after its last word to go on (jfk said four times lost "Americans, ask not" once), but
    # 0.4 s took `bench throughput`'s batch row from 20.6 to 12.2 audio seconds per second (padded silence
    # reads as speech left without words, which is decoded again): off until that is solved.
    speech_pad: float = 0.0

    def __post_init__(self) -> None:
        if self.max_seconds < 1.0:
            raise ValueError(f"a speech window must be allowed at least 1 s, got max_seconds={self.max_seconds}")
        if not 0.0 <= self.silence_threshold <= self.speech_threshold <= 1.0:
            raise ValueError("thresholds must satisfy 0 <= silence_threshold <= speech_threshold <= 1")
        if self.speech_pad < 0.0:
            raise ValueError(f"speech_pad must not be negative, got {self.speech_pad}")

    @classmethod
    def from_streaming(cls, streaming: StreamingSettings) -> SpeechCutPolicy:
        """Take the live path's speech settings (`[streaming]`): thresholds, pauses, lead, tail, longest window."""
        return cls(
            max_seconds=streaming.max_window,
            long_pause=streaming.long_pause,
            lead=streaming.speech_lead,
            tail=streaming.speech_tail,
            speech_threshold=streaming.speech_threshold,
            silence_threshold=streaming.silence_threshold,
            min_speech=streaming.min_speech,
        )


def speech_spans(probs: npt.NDArray[np.float32], policy: SpeechCutPolicy) -> list[tuple[int, int]]:
    """Return the speech spans as ``(first frame, frame after the last)``, with the live path's hysteresis."""
    spans: list[tuple[int, int]] = []
    start = -1
    for index, p in enumerate(probs.tolist()):
        if start < 0 and p >= policy.speech_threshold:
            start = index
        elif start >= 0 and p < policy.silence_threshold:
            spans.append((start, index))
            start = -1
    if start >= 0:
        spans.append((start, len(probs)))
    return spans


def voiced_ranges(probs: npt.NDArray[np.float32], total: int, policy: SpeechCutPolicy) -> list[tuple[int, int]]:
    """Return the runs of frames at or above the speech threshold as sample ranges (within ``total``).

    What a window's job hands the transcriber as its speech: the frames the live path hands it for a
    stream's window (`SpeechTrack.speech_spans`), narrower than the hysteresis spans windows are cut by.
    """
    return [(a, min(total, b)) for a, b in vad.speech_spans(probs, policy.speech_threshold)]


def padded(ranges: Sequence[tuple[int, int]], pad: int, total: int) -> list[tuple[int, int]]:
    """Return sample ``ranges`` widened by ``pad`` on each side within ``[0, total)``, overlapping ones merged."""
    out: list[tuple[int, int]] = []
    for a, b in ranges:
        start, end = max(0, a - pad), min(total, b + pad)
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def speech_cut_points(
    probs: npt.NDArray[np.float32], total: int, policy: SpeechCutPolicy, rate: int = 16000
) -> list[tuple[int, int]]:
    """Split a file of ``total`` samples into ``(start, end)`` sample ranges that hold all its speech.

    ``probs`` holds one speech probability per ``FRAME`` samples. Ranges are in order, do not
    overlap, and each is at most ``max_seconds`` long plus ``lead`` and ``tail``; a file without
    speech has none.
    """
    limit = max(1, round(policy.max_seconds * rate / FRAME))
    spans = _bounded(speech_spans(probs, policy), probs, limit, max(1, round(policy.search * rate / FRAME)))
    long_pause = policy.long_pause * rate / FRAME
    windows: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    for span in spans:
        if current and (span[0] - current[-1][1] >= long_pause):
            windows.append(current)
            current = []
        current.append(span)
        while current[-1][1] - current[0][0] > limit:
            split = _longest_pause(current, limit)
            windows.append(current[:split])
            current = current[split:]
    if current:
        windows.append(current)
    least = policy.min_speech * rate / FRAME
    windows = [
        w
        for i, w in enumerate(windows)
        if _voiced_frames(probs, w, policy.speech_threshold) >= least
        or not _alone(windows, i, long_pause)  # a piece of a longer utterance, not a click
    ]
    lead, tail = round(policy.lead * rate), round(policy.tail * rate)
    ranges: list[tuple[int, int]] = []
    for index, window in enumerate(windows):
        first, last = window[0][0] * FRAME, min(total, window[-1][1] * FRAME)
        floor = ranges[-1][1] if ranges else 0
        following = windows[index + 1][0][0] * FRAME if index + 1 < len(windows) else total
        start = max(floor, first - lead)
        end = min(following, total, last + tail)
        if index + 1 < len(windows):
            end = min(end, max(last, (last + following) // 2))  # leave the next window its lead
        if end > start:
            ranges.append((start, end))
    return ranges


def _alone(windows: list[list[tuple[int, int]]], index: int, long_pause: float) -> bool:
    """Whether window ``index`` is a long pause away from both neighbours (a click, not part of speech)."""
    before = index == 0 or windows[index][0][0] - windows[index - 1][-1][1] >= long_pause
    after = index + 1 == len(windows) or windows[index + 1][0][0] - windows[index][-1][1] >= long_pause
    return before and after


def _voiced_frames(probs: npt.NDArray[np.float32], window: list[tuple[int, int]], threshold: float) -> int:
    return sum(int(np.count_nonzero(probs[a:b] >= threshold)) for a, b in window)


def _bounded(
    spans: list[tuple[int, int]], probs: npt.NDArray[np.float32], limit: int, search: int
) -> list[tuple[int, int]]:
    """Cut every span longer than ``limit`` frames at its least speech-like frame before the limit."""
    out: list[tuple[int, int]] = []
    for start, end in spans:
        while end - start > limit:
            lo = start + max(1, limit - search)
            cut = lo + int(np.argmin(probs[lo : start + limit]))
            cut = max(start + 1, cut)
            out.append((start, cut))
            start = cut
        out.append((start, end))
    return out


def _longest_pause(window: list[tuple[int, int]], limit: int) -> int:
    """Return where to split a window's spans: after its longest pause that fits.

    The first part must span at least half the limit and at most the limit; without such a pause,
    the last split that fits.
    """
    begin = window[0][0]
    best, best_gap = len(window) - 1, -1
    for index in range(1, len(window)):
        before = window[index - 1][1] - begin
        if before > limit:
            break
        gap = window[index][0] - window[index - 1][1]
        if before >= limit // 2 and gap > best_gap:
            best, best_gap = index, gap
    if best_gap < 0:  # no pause in the second half: the last one that fits
        fitting = [i for i in range(1, len(window)) if window[i - 1][1] - begin <= limit]
        best = fitting[-1] if fitting else 1
    return best
