"""SegmentMerger: one stream's window transcripts merged into ordered, de-duplicated segments.

Rules for each window's words (stream-time timestamps):

* **Guards.** A window VAD skipped, with no words, that Whisper itself calls silence
  (``no_speech_prob`` above and ``avg_logprob`` below their thresholds) or that compresses like a
  repetition loop gives no words.
* **Already committed.** Words ending no later than ``end_tolerance`` after the committed horizon
  (the end of the last committed word) were seen by an earlier window: dropped (this removes the cut
  piece of a word that straddled the window start). Start times are not trusted: Whisper stretches a
  window's first word back to the window's start. If the first remaining word starts within
  ``match_window`` of the horizon, the longest run of 1 to 5 leading words that repeats the committed
  tail (lower case, punctuation stripped) is dropped too: the whisper_streaming boundary rule, for
  words whose timestamps moved between windows.
* **Loops.** An n-gram (n <= 4) repeated more than three times in a row, committed text included, is
  dropped (see `text.drop_loops`).
* **Commit.** A final window commits its words that start before its ``stable_until`` (the next
  window's start) and holds back the rest: the next window sees them whole, with context on both
  sides. A word straddling that point is committed here, since the next window sees it cut. The last
  window commits everything; an empty last window (no new audio) commits the held words. An interim
  preview commits what it and the previous pass agree on (LocalAgreement-2), up to the last agreed
  word that ends ``commit_lookahead`` before the preview's end; the held words of a final window
  count as a pass.
* **Segments.** Each pass that commits words emits one final segment (``revision`` 0) with id
  ``"{stream_id}:{session}:{index}"``, ``index`` counting from 0 in the session. The words not yet
  committed are published as an interim segment carrying the next final segment's id and an
  increasing ``revision`` (only when that text changed, an empty one retracting a shown preview).
  The last window always emits a final segment, empty if need be, with ``end_of_stream`` set.
* **Failures.** A final window whose inference failed (after the worker's retries) commits the words
  the merger held (the previous window heard them, with context) and marks the rest of the window as
  a gap in the final segment; a failed preview changes nothing.
* **Replays.** A final window older than the next expected one, or a preview of a window already
  merged, changes nothing and emits nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream_app.inference.types import WindowTranscript, Word
from stream_app.streaming.state import MergerState
from stream_app.streaming.text import agreed_prefix, drop_loops, join_words, normalise, overlap_length
from stream_app.streaming.windowing import Window
from stream_app.wire.segment import Gap, TranscriptSegment


@dataclass(frozen=True)
class MergePolicy:
    """Thresholds of the hallucination guards and the boundary matching."""

    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    end_tolerance: float = 0.05  # seconds past the horizon a re-seen word's end may reach
    match_window: float = 1.0  # seconds from the horizon within which the n-gram match applies
    tail_words: int = 16  # committed words remembered for matching and loop detection
    interim_commits: bool = True  # LocalAgreement-2: what two consecutive previews agree on is final
    commit_lookahead: float = 0.0  # ...if it ends this many seconds before the preview's end
    prompt_chars: int = 0  # committed text handed to the next windows as Whisper's prompt (0 = none)
    commit_min_probability: float = 0.0  # previews commit no word Whisper is less sure of than this


UNKNOWN = "none"  # model and precision of a segment made before any window was transcribed (a gap)


class SegmentMerger:
    """Merges one stream's window transcripts; see the module docstring for the rules."""

    def __init__(self, stream_id: str, policy: MergePolicy | None = None, *, session: str = "0") -> None:
        self._s = MergerState(stream_id=stream_id, session=session)
        self._policy = policy or MergePolicy()

    @classmethod
    def from_state(cls, state: MergerState, policy: MergePolicy | None = None) -> SegmentMerger:
        """Resume a merger from its stored state."""
        merger = cls.__new__(cls)
        merger._s = state
        merger._policy = policy or MergePolicy()
        return merger

    @property
    def state(self) -> MergerState:
        """The live state, for the worker's store."""
        return self._s

    @property
    def stream_id(self) -> str:
        """The stream this merger belongs to."""
        return self._s.stream_id

    @property
    def ended(self) -> bool:
        """The last window was merged; nothing more will be emitted."""
        return self._s.ended

    @property
    def next_index(self) -> int:
        """Index of the next final segment."""
        return self._s.next_index

    @property
    def prompt(self) -> str:
        """The end of the committed text, for the next window's decoder (empty when prompting is off)."""
        return self._s.prompt_text if self._policy.prompt_chars else ""

    @property
    def committed_until(self) -> float:
        """Stream time of the end of the last committed word, seconds."""
        return self._s.committed_until

    def add(self, window: Window, transcript: WindowTranscript | None) -> list[TranscriptSegment]:
        """Merge one window's transcript (``None`` for an empty window) and return the new segments."""
        s = self._s
        if s.ended or window.index < s.next_window:
            return []
        if window.is_interim and transcript is not None and transcript.rejected_preview:
            return []  # a preview the decoding guards distrust changes nothing
        if transcript is not None:
            s.model, s.precision = transcript.model, transcript.precision
        if window.is_last and window.is_empty and transcript is None:
            words = list(s.hypothesis)  # nothing new was heard: the held words are final as they are
        else:
            words = drop_loops(s.tail, self._fresh(self._usable(transcript)))
        if window.is_last:
            commit, rest = words, []
        elif window.is_interim:
            agreed = agreed_prefix(s.hypothesis, words) if self._policy.interim_commits else 0
            edge = window.end - self._policy.commit_lookahead  # words near a preview's end are still moving
            while agreed and words[agreed - 1].end > edge:
                agreed -= 1
            unsure = [i for i, w in enumerate(words[:agreed]) if w.probability < self._policy.commit_min_probability]
            agreed = min(agreed, unsure[0]) if unsure else agreed  # an unsure word waits for the final window
            commit, rest = words[:agreed], words[agreed:]
        else:
            stable = 0
            while stable < len(words) and words[stable].start < window.stable_until:
                stable += 1
            commit, rest = words[:stable], words[stable:]
        segments: list[TranscriptSegment] = []
        if commit or window.is_last:
            segments.append(self._final(commit, transcript, window))
        if not window.is_interim:
            s.next_window = window.index + 1
        s.hypothesis = list(rest)
        if window.is_last:
            s.ended = True
        elif join_words(rest) != s.interim_text:
            segments.append(self._interim(rest, transcript, window))
        return segments

    def fail(self, window: Window, reason: str, detail: str = "") -> list[TranscriptSegment]:
        """Record that ``window`` could not be transcribed: keep what was held, mark the rest as a gap."""
        s = self._s
        if s.ended or window.is_interim or window.index < s.next_window:
            return []
        held = list(s.hypothesis)
        covered_until = max(s.committed_until, held[-1].end if held else 0.0, window.start)
        gap_end = window.end if window.is_last else window.stable_until
        gaps = (Gap(round(covered_until, 3), round(max(gap_end, covered_until), 3), reason, detail[:1024]),)
        segment = self._final(held, None, window, gaps=gaps)
        s.next_window = window.index + 1
        s.hypothesis = []
        if window.is_last:
            s.ended = True
        return [segment]

    def gap(self, start: float, end: float, reason: str, detail: str = "") -> list[TranscriptSegment]:
        """Emit a final segment that only marks ``[start, end)`` as lost (e.g. the stream's state was)."""
        s = self._s
        if s.ended:
            return []
        marker = Window(s.next_window, round(start * 16000), np.zeros(0, np.float32), round(end * 16000))
        gaps = (Gap(round(start, 3), round(max(end, start), 3), reason, detail[:1024]),)
        return [self._final([], None, marker, gaps=gaps)]

    def _usable(self, transcript: WindowTranscript | None) -> list[Word]:
        p = self._policy
        if transcript is None or transcript.skipped_silence or not transcript.words:
            return []
        silent = transcript.no_speech_prob > p.no_speech_threshold
        if silent and transcript.avg_logprob < p.log_prob_threshold:
            return []
        if transcript.compression_ratio > p.compression_ratio_threshold:
            return []
        return list(transcript.words)

    def _fresh(self, words: list[Word]) -> list[Word]:
        """Drop the words an earlier window already committed."""
        s, p = self._s, self._policy
        if not s.tail:
            return words
        horizon = s.committed_until
        kept = [w for w in words if w.end > horizon + p.end_tolerance]
        if kept and abs(kept[0].start - horizon) < p.match_window:
            kept = kept[overlap_length(s.tail, kept) :]
        return kept

    def _final(
        self,
        words: list[Word],
        transcript: WindowTranscript | None,
        window: Window,
        gaps: tuple[Gap, ...] = (),
    ) -> TranscriptSegment:
        s = self._s
        segment = self._segment(words, transcript, window, revision=s.revision, final=True, gaps=gaps)
        if words:
            s.committed_until = max(s.committed_until, words[-1].end)
            s.tail = (s.tail + [normalise(w.text) for w in words])[-self._policy.tail_words :]
            if self._policy.prompt_chars:
                text = f"{s.prompt_text} {join_words(words)}".strip()
                s.prompt_text = (
                    text[-self._policy.prompt_chars :].split(" ", 1)[-1]
                    if len(text) > self._policy.prompt_chars
                    else text
                )
        s.next_index += 1
        s.revision = 0
        s.interim_text = ""
        return segment

    def _interim(self, words: list[Word], transcript: WindowTranscript | None, window: Window) -> TranscriptSegment:
        s = self._s
        segment = self._segment(words, transcript, window, revision=s.revision, final=False)
        s.revision += 1
        s.interim_text = segment.text
        return segment

    def _segment(
        self,
        words: list[Word],
        transcript: WindowTranscript | None,
        window: Window,
        *,
        revision: int,
        final: bool,
        gaps: tuple[Gap, ...] = (),
    ) -> TranscriptSegment:
        s = self._s
        start = words[0].start if words else (gaps[0].start if gaps else window.end)
        end = words[-1].end if words else (gaps[-1].end if gaps else window.end)
        confidence = sum(w.probability for w in words) / len(words) if words else 0.0
        return TranscriptSegment(
            stream_id=s.stream_id,
            segment_id=segment_id(s.stream_id, s.session, s.next_index),
            index=s.next_index,
            revision=revision,
            is_final=final,
            start=start,
            end=end,
            text=join_words(words),
            words=tuple(words),
            model=transcript.model if transcript is not None else (s.model or UNKNOWN),
            precision=transcript.precision if transcript is not None else (s.precision or UNKNOWN),
            avg_logprob=transcript.avg_logprob if transcript is not None else 0.0,
            no_speech_prob=transcript.no_speech_prob if transcript is not None else 1.0,
            confidence=confidence,
            end_of_stream=final and window.is_last,
            language=transcript.language if transcript is not None else "en",
            session=s.session,
            gaps=gaps,
        )


def segment_id(stream_id: str, session: str, index: int) -> str:
    """Deterministic id of a session's ``index``-th final segment (and of the previews before it)."""
    return f"{stream_id}:{session}:{index}"
