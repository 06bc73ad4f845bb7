"""SegmentMerger: one stream's decode results turned into final and interim segments.

A result holds only words after the words already final in its window: the decoder is forced
through them (``force_final_words``), or it decoded them again freely and the session dropped them up
to the last one (`stream_app.streaming.anchoring`). So a word once final is never counted again.

* **Guards.** The transcriber judges each decode (`stream_app.inference.guards`: loops, counted with
  the final words it was forced through, words piled up where alignment found no audio); a tick or
  preview it rejected changes nothing. The merger keeps every word a trusted decode heard, repeats
  included ("no no no no" is four words).
* **Ticks.** A tick commits the words it and the previous tick of the window agree on
  (LocalAgreement-2: normalised text, on the same audio, so that "no no" agrees with "no no no" only
  where the same "no"s are meant), never the last word of either (it may still grow) and never a
  word ending less than ``commit_lookahead`` before the tick's end. A word the two hear differently
  is final as the newer tick heard it once the ``settle_after`` words after it (by position in both
  lists, and on the same audio: a word one decode missed shifts the rest) agree and are old enough,
  so one unstable word does not hold back the rest until the cut.
  The rest is the hypothesis the next tick is compared with.
* **Cuts.** A cut commits every word its decode found. Speech the decoder left without words is a
  gap (``undecoded_speech``), so a span of speech is always either words or a gap.
* **Previews** show the words after the prefix as an interim; they commit nothing.
* **Segments.** Each commit is one final segment, id ``"{stream_id}:{session}:{index}"``. Interims
  carry the id of the next final and a revision one higher than the record before; the final of an
  id carries the highest revision (schema v3). An id that showed an interim always gets its final,
  empty if the words went elsewhere. Spans lost before transcription (lost or late chunks, skipped
  or dropped audio) and failed decodes are gaps of the next final segment.
* **End.** The last final of a session carries ``end_of_stream``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from stream_app.inference.types import WindowTranscript, Word
from stream_app.streaming.config import LiveConfig
from stream_app.streaming.state import MergerState
from stream_app.streaming.text import join_words, normalise
from stream_app.wire.chunk import SAMPLE_RATE
from stream_app.wire.segment import Gap, TranscriptSegment


@dataclass(frozen=True)
class MergePolicy:
    """The commit rule's margin, and when a word two decodes hear differently stops blocking the rest.

    ``settle_after``: a word the last two commit decodes hear differently becomes final as the newer
    one heard it when the next ``settle_after`` words, in the same places, agree (0: never; it waits
    for two decodes that agree on it, or for the window's cut).
    """

    commit_lookahead: float = 0.5  # a tick commits no word ending closer than this to its end (seconds)
    settle_after: int = 2

    @classmethod
    def of(cls, config: LiveConfig) -> MergePolicy:
        """Return the policy a live rule implies: its commit margin and settling rule (a stored rule has both)."""
        return cls(commit_lookahead=config.commit_lookahead / SAMPLE_RATE, settle_after=config.settle_after)


UNKNOWN = "none"  # model and precision of a segment made before any window was transcribed (a gap)


class SegmentMerger:
    """Turns one stream's decode results into segments; see the module docstring."""

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
    def policy(self) -> MergePolicy:
        """The commit margin and settling rule this merger decides by."""
        return self._policy

    @property
    def stream_id(self) -> str:
        """The stream this merger belongs to."""
        return self._s.stream_id

    @property
    def ended(self) -> bool:
        """The end-of-stream segment was emitted; nothing more will be."""
        return self._s.ended

    @property
    def prefix(self) -> tuple[Word, ...]:
        """The open window's final words: every decode of the window continues after them."""
        return tuple(self._s.committed)

    @property
    def has_pending(self) -> bool:
        """Whether a final is owed: an interim is showing or gaps wait for a segment."""
        return bool(self._s.interim_text or self._s.gaps)

    # ---- results ---------------------------------------------------------------------------------

    def tick(self, result: WindowTranscript, position: int) -> list[TranscriptSegment]:
        """Merge a tick's result (the window decoded up to stream sample ``position``)."""
        s, p = self._s, self._policy
        if s.ended:
            return []
        if result.rejected_preview:
            return []  # a tick the guards distrust changes nothing: the next one decodes the window again
        self._note_model(result)
        words = self._usable(result)
        out: list[TranscriptSegment] = []
        if s.hypothesis is not None:
            agreed = _agreed(s.hypothesis, words, position / SAMPLE_RATE - p.commit_lookahead, p.settle_after)
            if agreed:
                out.append(self._final(words[:agreed], result, position))
                words = words[agreed:]
        s.hypothesis = list(words)
        s.hypothesis_at = position
        out.extend(self._show(words, result, position))
        return out

    def preview(self, result: WindowTranscript, position: int) -> list[TranscriptSegment]:
        """Show a preview's words (after the prefix) as the interim; nothing becomes final.

        ``position`` (the stream sample the preview decoded up to) is where an interim without words says
        it was made.
        """
        if self._s.ended or result.rejected_preview:
            return []
        self._note_model(result)
        return self._show(self._usable(result), result, position)

    def cut(
        self, result: WindowTranscript | None, end: int, *, last: bool = False, close: bool = True
    ) -> list[TranscriptSegment]:
        """Commit every word of the decode (``None``: nothing was decoded); ``close`` ends the window.

        Speech the decode left without words becomes an ``undecoded_speech`` gap. ``last`` marks the
        stream's final segment (the stream ended with this window). A pause keeps the window open:
        its words stay in the decoder prefix.
        """
        s = self._s
        if s.ended:
            return []
        words: list[Word] = []
        if result is not None:
            self._note_model(result)
            words = self._usable(result)
            for start, stop in result.undecoded:
                s.gaps.append(Gap(round(start, 3), round(stop, 3), "undecoded_speech", "speech without words"))
        out: list[TranscriptSegment] = []
        if words or s.gaps or s.interim_text or last:
            out.append(self._final(words, result, end, last=last))
        if close:
            s.committed = []
        s.hypothesis = None
        return out

    def fail(
        self, start: int, end: int, reason: str, detail: str = "", *, last: bool = False
    ) -> list[TranscriptSegment]:
        """Close the window whose final decode failed: ``[start, end)`` after its final words is a gap."""
        s = self._s
        if s.ended:
            return []
        covered = max(start / SAMPLE_RATE, s.committed[-1].end if s.committed else 0.0)
        stop = max(end / SAMPLE_RATE, covered)
        s.gaps.append(Gap(round(covered, 3), round(stop, 3), reason, detail[:1024]))
        segment = self._final([], None, end, last=last)
        s.committed = []
        s.hypothesis = None
        return [segment]

    def end(self, position: int) -> list[TranscriptSegment]:
        """Emit the end-of-stream segment of a stream that ended, unless a cut already did."""
        if self._s.ended:
            return []
        return [self._final([], None, position, last=True)]

    def gap(self, start: float, end: float, reason: str, detail: str = "") -> None:
        """Record a span of stream time lost before transcription; the next final segment carries it."""
        if not self._s.ended:
            self._s.gaps.append(Gap(round(start, 3), round(max(end, start), 3), reason, detail[:1024]))

    def flush(self, position: int) -> list[TranscriptSegment]:
        """Publish waiting gaps now in a segment of their own (no window is open to carry them)."""
        s = self._s
        if s.ended or not s.gaps or s.committed or s.hypothesis:
            return []
        return [self._final([], None, position)]

    def rebase(self, start: int) -> None:
        """Start the open window at ``start``: final words before it leave the decoder prefix."""
        s = self._s
        s.committed = [w for w in s.committed if round(w.start * SAMPLE_RATE) >= start]  # as the start was rounded

    # ---- rules -----------------------------------------------------------------------------------

    def _usable(self, result: WindowTranscript | None) -> list[Word]:
        """Return the result's words (the transcriber's guards already judged the decode)."""
        if result is None or result.skipped_silence or result.rejected_preview or not result.words:
            return []
        return list(result.words)

    def _note_model(self, result: WindowTranscript) -> None:
        s = self._s
        s.model, s.precision, s.language = result.model, result.precision, result.language

    def _show(self, words: Sequence[Word], result: WindowTranscript, position: int) -> list[TranscriptSegment]:
        """Publish the uncommitted words as the interim of the next final, when their text changed."""
        s = self._s
        text = join_words(words)
        if text == s.interim_text:
            return []
        segment = self._segment(list(words), result, position, final=False)
        s.revision += 1
        s.interim_text = text
        return [segment]

    def _final(
        self, words: list[Word], result: WindowTranscript | None, position: int, *, last: bool = False
    ) -> TranscriptSegment:
        s = self._s
        gaps, s.gaps = tuple(sorted(s.gaps, key=lambda g: (g.start, g.end))), []
        segment = self._segment(words, result, position, final=True, gaps=gaps, last=last)
        if words:
            s.committed.extend(words)
        s.next_index += 1
        s.revision = 0
        s.interim_text = ""
        if last:
            s.ended = True
        return segment

    def _segment(
        self,
        words: list[Word],
        result: WindowTranscript | None,
        position: int,
        *,
        final: bool,
        gaps: tuple[Gap, ...] = (),
        last: bool = False,
    ) -> TranscriptSegment:
        s = self._s
        at = round(position / SAMPLE_RATE, 3)
        starts = [w.start for w in words] + [g.start for g in gaps]
        ends = [w.end for w in words] + [g.end for g in gaps]
        confidence = sum(w.probability for w in words) / len(words) if words else 0.0
        return TranscriptSegment(
            stream_id=s.stream_id,
            segment_id=segment_id(s.stream_id, s.session, s.next_index),
            index=s.next_index,
            revision=s.revision,
            is_final=final,
            start=min(starts) if starts else at,
            end=max(ends) if ends else at,
            text=join_words(words),
            words=tuple(words),
            model=result.model if result is not None else (s.model or UNKNOWN),
            precision=result.precision if result is not None else (s.precision or UNKNOWN),
            avg_logprob=min(0.0, result.avg_logprob) if result is not None else 0.0,
            no_speech_prob=result.no_speech_prob if result is not None else 1.0,
            confidence=confidence,
            end_of_stream=final and last,
            language=result.language if result is not None else (s.language or "en"),
            session=s.session,
            gaps=gaps,
        )


def _agreed(before: Sequence[Word], now: Sequence[Word], until: float, settle_after: int) -> int:
    """LocalAgreement-2 with its guards: how many leading words of ``now`` may become final.

    With ``settle_after``, a word heard differently is passed over (``now``'s reading) when the
    ``settle_after`` words after it agree and end before ``until``, and it and they sit on the same audio
    in both decodes: one unstable word no longer holds back every word after it until the window's cut.
    """
    count = 0
    limit = min(len(before), len(now)) - 1  # the last word of either pass may still grow
    # the same word on the same audio: where one decode missed a word, the words after it are a word
    # apart, and among repeats ("no no no" against "no no") they would agree by text alone
    places = _same_places(before, now)
    same = [normalise(b.text) == normalise(n.text) and at for b, n, at in zip(before, now, places, strict=False)]
    while count < limit:
        if now[count].end > until:
            break
        if not same[count]:
            follow = count + settle_after
            if not settle_after or follow >= limit or now[follow].end > until:
                break
            if not all(same[count + 1 : follow + 1]) or not places[count]:
                break
        count += 1
    return count


MIN_SPAN = 0.1  # seconds: a word shorter than this (alignment gives some no length) counts as this long
SHORT_WORD = 0.2  # seconds: a word this short has edges no surer than Whisper's jitter between decodes
SHORT_WORD_JITTER = 0.1  # seconds: two short words whose middles are this close lie on the same audio


def _same_places(before: Sequence[Word], now: Sequence[Word]) -> list[bool]:
    """For each position of the two decodes, whether their words there are one word on the same audio.

    They lie on the same audio (`_same_place`), and neither took the audio of a word the other decode has
    beside that position as well (`_absorbs`).
    """
    room = [min(a, b) for a, b in zip(_room(before), _room(now), strict=False)]
    near = [_same_place(a, b, r) for a, b, r in zip(before, now, room, strict=False)]
    return [
        at and not _absorbs(b, before, i, near) and not _absorbs(a, now, i, near)
        for i, (a, b, at) in enumerate(zip(before, now, near, strict=False))
    ]


def _absorbs(word: Word, other: Sequence[Word], i: int, near: Sequence[bool]) -> bool:
    """Whether ``word`` (position ``i`` of one decode) spans a word beside ``i`` in the ``other`` decode too.

    It holds half or more of the ``other`` decode's word at ``i - 1`` or ``i + 1`` while that word has no
    counterpart at its own position (``near``): ``word``'s decode missed a word and aligned its neighbour
    over both. Stretched forward ("no so" heard as one "no" ending where "so" ended), ``word`` holds the
    missed word; stretched back (starting where the missed word started), it holds its own reading in the
    ``other`` decode, a position later there. Agreed, ``word`` would be made final over the missed word's
    audio: that word lost, or made final inside its times when later decodes hear it again. Half, not
    all: a later decode's times may be shifted as a whole by a tenth of a second or more. A neighbour
    with a counterpart has only had a boundary moved, and one without length has no audio to take.
    """
    for j in (i - 1, i + 1):
        if 0 <= j < len(other) and not (j < len(near) and near[j]):
            length = other[j].end - other[j].start
            held = min(word.end, other[j].end) - max(word.start, other[j].start)
            if length > 0 and held >= length / 2:
                return True
    return False


def _room(words: Sequence[Word]) -> list[float]:
    """Half the distance from each word's middle to its nearest neighbour's (a middle moved less stays nearer it)."""
    middles = [(w.start + w.end) / 2 for w in words]
    out = []
    for i, middle in enumerate(middles):
        apart = [abs(middle - middles[j]) for j in (i - 1, i + 1) if 0 <= j < len(middles)]
        out.append(min(apart) / 2 if apart else math.inf)
    return out


def _same_place(a: Word, b: Word, room: float) -> bool:
    """Whether two decodes put a word on the same audio: the two spans overlap by half the longer one.

    Each span counts as at least ``MIN_SPAN`` long, around its middle. A word one decode missed shifts
    the words after it by a whole word, or hands its audio to a neighbour, which then spans twice as
    much; Whisper's jitter between two decodes of one word moves its edges by a few frames. For two
    short words those frames are most of the word (``them`` at 10.44-10.54 s, then 10.40-10.42 s), so
    two words both at most ``SHORT_WORD`` long are compared by their middles: within
    ``SHORT_WORD_JITTER`` and less than ``room``, half the way to a neighbour's middle in either decode
    (back-to-back short repeats, ``no no no`` at 90 ms each, are closer than the jitter: a shift by one
    of them must not pass for it).
    """
    if max(a.end - a.start, b.end - b.start) <= SHORT_WORD:
        moved = abs((a.start + a.end) - (b.start + b.end)) / 2
        return moved <= SHORT_WORD_JITTER and moved < room
    (a0, a1), (b0, b1) = _span(a), _span(b)
    return min(a1, b1) - max(a0, b0) >= max(a1 - a0, b1 - b0) / 2


def _span(word: Word) -> tuple[float, float]:
    pad = max(0.0, MIN_SPAN - (word.end - word.start)) / 2
    return word.start - pad, word.end + pad


def segment_id(stream_id: str, session: str, index: int) -> str:
    """Deterministic id of a session's ``index``-th final segment (and of the interims before it)."""
    return f"{stream_id}:{session}:{index}"
