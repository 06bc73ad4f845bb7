"""Compare what a disturbed run published with an undisturbed run of the same audio, stream by stream.

The verifier reads only the public contract of the transcripts topic (key = stream id, a JSON object
with ``segment_id``, ``is_final``, ``text``, ``start``, ``end``, ``end_of_stream``), whatever the
schema version or the id format. Definitions, per stream:

- **finals**: the final segments, one per ``segment_id`` (the first published), in stream-time order
  (``start``, then ``end``, then the order read).
- **complete**: an ``end_of_stream`` segment was published.
- **conflicting final id**: a ``segment_id`` published final at least twice with different text
  (compared after stripping surrounding whitespace).
- **missing final segment**: a final segment of the reference run (with at least one word) of whose
  words fewer than half are matched in the disturbed run. Matching: both runs' final texts are
  normalised (`stream_app.testing.wer.normalize`) and concatenated in order, then aligned by the
  minimum-edit alignment that WER uses (jiwer); a reference word is matched when it lies in an
  ``equal`` stretch. The alignment keeps order, so a sentence is only matched by the same sentence at
  the same place in the stream, never by a repetition elsewhere. **Extra final segments** are the same
  rule the other way round (text in the disturbed run that the reference does not have there).
- **final text mismatch**: a final segment whose text differs between the runs, or that one run has and
  the other lacks. Finals are paired by their place in the stream, not by the raw id (a session's id
  names the input offset it started at, which differs between runs): an id ``{stream}:{session}:{n}``
  is keyed by the session's rank among the stream's sessions (ordered by that offset) and ``n``; any
  other id by its rank in the finals. Texts are compared after stripping surrounding whitespace. With
  finals decided by the audio and the stored state alone (every commit step decoded, as `bench chaos`
  and `bench failover` run by default), faults change none: the count is 0.
- **WER vs reference**: errors of the disturbed run's final text against the reference run's final
  text (substitutions + deletions + insertions); pooled over streams as total errors / total
  reference words. 0 when both runs published the same words.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import jiwer
import orjson

from stream_app.testing.topic_reader import TopicRecord
from stream_app.testing.wer import normalize
from stream_app.wire.chunk_codec import CHUNK_EVENT_TYPE, H_SEQ, H_TYPE

MATCHED_SHARE = 0.5  # a reference final with fewer than this share of its words matched is missing


@dataclass(frozen=True)
class OutputSegment:
    """The contract fields of one transcripts record; ``position`` is the order it was read in."""

    stream_id: str
    segment_id: str
    is_final: bool
    text: str
    start: float
    end: float
    end_of_stream: bool
    position: int


def parse_segment(record: TopicRecord, position: int) -> OutputSegment | None:
    """Read one transcripts record; None when it is not a segment (counted by the caller)."""
    try:
        document = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    stream_id = document.get("stream_id")
    if not isinstance(stream_id, str):
        stream_id = (record.key or b"").decode("utf-8", errors="replace")
    try:
        return OutputSegment(
            stream_id=stream_id,
            segment_id=str(document["segment_id"]),
            is_final=bool(document["is_final"]),
            text=str(document.get("text") or ""),
            start=float(document.get("start") or 0.0),
            end=float(document.get("end") or 0.0),
            end_of_stream=bool(document.get("end_of_stream", False)),
            position=position,
        )
    except (KeyError, TypeError, ValueError):
        return None


@dataclass
class StreamOutput:
    """Everything one stream published, in the order read."""

    stream_id: str
    segments: list[OutputSegment] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether the stream's end-of-stream segment was published."""
        return any(s.end_of_stream for s in self.segments)

    def finals(self) -> list[OutputSegment]:
        """Return the first final segment published under each id, in stream-time order."""
        first: dict[str, OutputSegment] = {}
        for segment in self.segments:
            if segment.is_final:
                first.setdefault(segment.segment_id, segment)
        return sorted(first.values(), key=lambda s: (s.start, s.end, s.position))

    def conflicting_ids(self) -> list[str]:
        """Return the ids published final with more than one text."""
        texts: dict[str, set[str]] = defaultdict(set)
        for segment in self.segments:
            if segment.is_final:
                texts[segment.segment_id].add(segment.text.strip())
        return sorted(sid for sid, seen in texts.items() if len(seen) > 1)

    def repeated_finals(self) -> int:
        """Count final records beyond the first per id (at-least-once replays; harmless with one text)."""
        counts = Counter(s.segment_id for s in self.segments if s.is_final)
        return sum(n - 1 for n in counts.values())

    def text(self) -> str:
        """Return the final text: the finals' texts joined in stream-time order."""
        return " ".join(t for t in (s.text.strip() for s in self.finals()) if t)


@dataclass
class TopicOutput:
    """A whole transcripts topic as streams, plus the records that were not segments."""

    streams: dict[str, StreamOutput] = field(default_factory=dict)
    unreadable: int = 0

    def get(self, stream_id: str) -> StreamOutput:
        """Return the stream's output (empty when it published nothing)."""
        return self.streams.get(stream_id) or StreamOutput(stream_id)


def group_segments(records: Iterable[TopicRecord]) -> TopicOutput:
    """Parse every record of a transcripts topic and group the segments by stream."""
    out = TopicOutput()
    for position, record in enumerate(records):
        segment = parse_segment(record, position)
        if segment is None:
            out.unreadable += 1
            continue
        out.streams.setdefault(segment.stream_id, StreamOutput(segment.stream_id)).segments.append(segment)
    return out


@dataclass(frozen=True)
class StreamVerdict:
    """How one stream of the disturbed run compares with the reference run."""

    stream_id: str
    complete: bool
    reference_finals: int
    finals: int
    missing: tuple[str, ...]  # texts of the reference finals missing here
    extra: tuple[str, ...]  # texts of the finals here that the reference lacks
    conflicting_ids: int
    repeated_finals: int
    reference_words: int
    errors: int  # substitutions + deletions + insertions against the reference run's text
    text_mismatches: int = 0  # finals whose text differs from the reference's final at the same place

    @property
    def missing_finals(self) -> int:
        """Reference final segments this run lacks."""
        return len(self.missing)

    @property
    def extra_finals(self) -> int:
        """Final segments of this run the reference lacks."""
        return len(self.extra)

    @property
    def wer_vs_reference(self) -> float:
        """Errors per reference word (0 or 1 when the reference has no words)."""
        if self.reference_words == 0:
            return 0.0 if self.errors == 0 else 1.0
        return self.errors / self.reference_words


def _words(finals: Sequence[OutputSegment]) -> tuple[list[str], list[int]]:
    """Return the normalised words of the finals, and for each word the index of its segment."""
    words: list[str] = []
    owners: list[int] = []
    for index, segment in enumerate(finals):
        for word in normalize(segment.text).split():
            words.append(word)
            owners.append(index)
    return words, owners


def _matched(reference: list[str], hypothesis: list[str]) -> tuple[set[int], set[int], int]:
    """Align two word lists; return matched reference indexes, matched hypothesis indexes, and the errors."""
    if not reference or not hypothesis:
        return set(), set(), max(len(reference), len(hypothesis))
    result = jiwer.process_words(" ".join(reference), " ".join(hypothesis))
    ref_hits: set[int] = set()
    hyp_hits: set[int] = set()
    for chunk in result.alignments[0]:
        if chunk.type == "equal":
            ref_hits.update(range(chunk.ref_start_idx, chunk.ref_end_idx))
            hyp_hits.update(range(chunk.hyp_start_idx, chunk.hyp_end_idx))
    errors = int(result.substitutions + result.deletions + result.insertions)
    return ref_hits, hyp_hits, errors


def _unmatched_segments(owners: list[int], hits: set[int], segments: Sequence[OutputSegment]) -> tuple[str, ...]:
    """Return the texts of the segments with words of which fewer than `MATCHED_SHARE` are matched."""
    total = Counter(owners)
    matched = Counter(owners[i] for i in hits)
    return tuple(
        segment.text.strip()
        for index, segment in enumerate(segments)
        if total[index] and matched[index] < MATCHED_SHARE * total[index]
    )


def compare_stream(reference: StreamOutput, disturbed: StreamOutput) -> StreamVerdict:
    """Compare one stream's disturbed output with its reference output (see the module docstring)."""
    ref_finals, finals = reference.finals(), disturbed.finals()
    ref_words, ref_owners = _words(ref_finals)
    words, owners = _words(finals)
    ref_hits, hits, errors = _matched(ref_words, words)
    return StreamVerdict(
        stream_id=reference.stream_id,
        complete=disturbed.complete,
        reference_finals=len(ref_finals),
        finals=len(finals),
        missing=_unmatched_segments(ref_owners, ref_hits, ref_finals),
        extra=_unmatched_segments(owners, hits, finals),
        conflicting_ids=len(disturbed.conflicting_ids()),
        repeated_finals=disturbed.repeated_finals(),
        reference_words=len(ref_words),
        errors=errors,
        text_mismatches=text_mismatches(ref_finals, finals),
    )


def final_places(finals: Sequence[OutputSegment]) -> dict[tuple[int, int], str]:
    """Each final's text keyed by its place in the stream (see the module docstring)."""
    parsed = [_session_index(s.segment_id) for s in finals]
    if any(p is None for p in parsed):
        return {(0, rank): s.text.strip() for rank, s in enumerate(finals)}
    sessions = sorted({p[0] for p in parsed if p is not None}, key=_offset_order)
    rank = {session: i for i, session in enumerate(sessions)}
    return {(rank[p[0]], p[1]): s.text.strip() for s, p in zip(finals, parsed, strict=True) if p is not None}


def text_mismatches(reference: Sequence[OutputSegment], disturbed: Sequence[OutputSegment]) -> int:
    """Count the finals whose text differs between the runs, or that one run lacks."""
    a, b = final_places(reference), final_places(disturbed)
    return sum(1 for key in a.keys() | b.keys() if a.get(key) != b.get(key))


def _session_index(segment_id: str) -> tuple[str, int] | None:
    parts = segment_id.rsplit(":", 2)
    if len(parts) != 3 or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2])


def _offset_order(session: str) -> tuple[float, ...]:
    """Order sessions ``partition.offset`` by offset (other names by their text, after those)."""
    try:
        return (0.0, *(float(x) for x in session.split(".")))
    except ValueError:
        return (1.0,)


@dataclass(frozen=True)
class Verdict:
    """Every stream's verdict and the run's totals."""

    streams: tuple[StreamVerdict, ...]

    @property
    def streams_complete(self) -> int:
        """Streams whose end-of-stream segment the disturbed run published."""
        return sum(1 for s in self.streams if s.complete)

    @property
    def missing_final_segments(self) -> int:
        """Reference final segments the disturbed run lacks."""
        return sum(s.missing_finals for s in self.streams)

    @property
    def extra_final_segments(self) -> int:
        """Disturbed-run final segments the reference does not have."""
        return sum(s.extra_finals for s in self.streams)

    @property
    def conflicting_final_ids(self) -> int:
        """Ids published final with different texts."""
        return sum(s.conflicting_ids for s in self.streams)

    @property
    def final_text_mismatches(self) -> int:
        """Finals whose text differs from the reference run's final at the same place (or lacks one)."""
        return sum(s.text_mismatches for s in self.streams)

    @property
    def wer_vs_reference(self) -> float:
        """Pooled WER of the disturbed run's final text against the reference run's."""
        words = sum(s.reference_words for s in self.streams)
        errors = sum(s.errors for s in self.streams)
        if words == 0:
            return 0.0 if errors == 0 else 1.0
        return errors / words


def verify(reference: TopicOutput, disturbed: TopicOutput, stream_ids: Iterable[str]) -> Verdict:
    """Compare every stream of ``stream_ids`` (a stream absent from a run counts as publishing nothing)."""
    return Verdict(tuple(compare_stream(reference.get(sid), disturbed.get(sid)) for sid in stream_ids))


@dataclass(frozen=True)
class ChunkCensus:
    """What the input topic holds of each stream's chunks, against what the recorders meant to send."""

    expected: int
    distinct: int
    duplicates: int  # records beyond the first per (stream, seq)

    @property
    def lost(self) -> int:
        """Chunks planned but absent from the topic."""
        return self.expected - self.distinct


def census_chunks(records: Iterable[TopicRecord], expected: Mapping[str, int]) -> ChunkCensus:
    """Count each expected stream's chunks on the input topic by ``ce_seq`` (headers only, no decoding).

    A record counts when its ``ce_type`` is the chunk event type (other records on the topic, such as
    a worker's idle ticks, carry a ``ce_seq`` too) and its ``ce_seq`` is below the number of chunks the
    stream's recorder planned.
    """
    seen: dict[str, Counter[int]] = {sid: Counter() for sid in expected}
    for record in records:
        stream_id = (record.key or b"").decode("utf-8", errors="replace")
        counter = seen.get(stream_id)
        headers = dict(record.headers)
        if counter is None or headers.get(H_TYPE) != CHUNK_EVENT_TYPE.encode():
            continue
        raw = headers.get(H_SEQ, b"")
        if raw.isdigit() and int(raw) < expected[stream_id]:
            counter[int(raw)] += 1
    distinct = sum(len(c) for c in seen.values())
    copies = sum(sum(c.values()) for c in seen.values())
    return ChunkCensus(sum(expected.values()), distinct, copies - distinct)


def dead_letter_reasons(records: Iterable[TopicRecord]) -> dict[str, int]:
    """Count a dead-letter topic's records by their ``dlq_reason`` header."""
    reasons: Counter[str] = Counter()
    for record in records:
        reasons[dict(record.headers).get("dlq_reason", b"").decode("utf-8", errors="replace") or "?"] += 1
    return dict(sorted(reasons.items()))
