"""Transcript segments on the wire: one JSON object per record (schemas/transcript-segment.v3.json)."""

from __future__ import annotations

import math
from typing import Any

import orjson

from stream_app.inference.types import Word
from stream_app.wire.exceptions import SchemaViolation, SegmentDecodeError
from stream_app.wire.schema import validate_segment
from stream_app.wire.segment import SEGMENT_SCHEMA_VERSION, Gap, TranscriptSegment

_FLOAT_FIELDS = ("start", "end", "avg_logprob", "no_speech_prob", "confidence", "latency_ms", "produced_at")


def segment_to_dict(segment: TranscriptSegment) -> dict[str, Any]:
    """Turn a segment into the contract's JSON object (``Word.text`` is written as ``word``).

    Raises:
        ValueError: a number is NaN or infinite (JSON cannot carry it; orjson would write null).
    """
    for name in _FLOAT_FIELDS:
        value = getattr(segment, name)
        if value is not None and not math.isfinite(value):
            raise ValueError(f"segment {segment.segment_id}: {name} is {value}, not a finite number")
    for word in segment.words:
        if not all(math.isfinite(v) for v in (word.start, word.end, word.probability)):
            raise ValueError(f"segment {segment.segment_id}: word {word.text!r} has a non-finite number")
    return {
        "schema_version": segment.schema_version,
        "stream_id": segment.stream_id,
        "session": segment.session,
        "segment_id": segment.segment_id,
        "index": segment.index,
        "revision": segment.revision,
        "is_final": segment.is_final,
        "start": segment.start,
        "end": segment.end,
        "text": segment.text,
        "words": [_word_to_dict(w) for w in segment.words],
        "gaps": [{"start": g.start, "end": g.end, "reason": g.reason, "detail": g.detail} for g in segment.gaps],
        "model": segment.model,
        "precision": segment.precision,
        "avg_logprob": segment.avg_logprob,
        "no_speech_prob": segment.no_speech_prob,
        "confidence": segment.confidence,
        "latency_ms": segment.latency_ms,
        "end_of_stream": segment.end_of_stream,
        "language": segment.language,
        "produced_at": segment.produced_at,
    }


def encode_segment(segment: TranscriptSegment) -> bytes:
    """Serialise a segment for the transcripts topic (the record key is ``segment.stream_id``)."""
    return orjson.dumps(segment_to_dict(segment))


def decode_segment(data: bytes) -> TranscriptSegment:
    """Parse and validate one transcripts record value.

    Raises:
        SegmentDecodeError: not JSON, or not a transcript-segment v3 object (nor a v2 or v1 one:
            records published before an upgrade; v1 reads as session ``"0"`` without gaps, and a v2
            final, published at revision 0, reads with a revision above any interim's).
    """
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SegmentDecodeError(f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise SegmentDecodeError(f"expected a JSON object, got {type(document).__name__}")
    try:
        validate_segment(document)
    except SchemaViolation as exc:
        raise SegmentDecodeError(str(exc)) from None
    return segment_from_dict(document)


def segment_from_dict(document: dict[str, Any]) -> TranscriptSegment:
    """Build a segment from an object that already passed :func:`validate_segment`."""
    words = tuple(_word_from_dict(w) for w in document["words"])
    gaps = tuple(
        Gap(float(g["start"]), float(g["end"]), str(g["reason"]), str(g["detail"])) for g in document.get("gaps", ())
    )
    latency = document["latency_ms"]
    produced_at = document["produced_at"]
    return TranscriptSegment(
        stream_id=document["stream_id"],
        segment_id=document["segment_id"],
        index=document["index"],
        revision=_revision(document),
        is_final=document["is_final"],
        start=float(document["start"]),
        end=float(document["end"]),
        text=document["text"],
        words=words,
        model=document["model"],
        precision=document["precision"],
        avg_logprob=float(document["avg_logprob"]),
        no_speech_prob=float(document["no_speech_prob"]),
        confidence=float(document["confidence"]),
        latency_ms=None if latency is None else float(latency),
        end_of_stream=document["end_of_stream"],
        language=document["language"],
        schema_version=SEGMENT_SCHEMA_VERSION,  # an older record is read into this version's meaning (`_revision`)
        produced_at=None if produced_at is None else float(produced_at),
        session=str(document.get("session", "0")),
        gaps=gaps,
    )


V2_FINAL_REVISION = 1 << 30  # a v2 final (revision 0) ranks above every interim of its id, as v3 finals do


def _revision(document: dict[str, Any]) -> int:
    revision = int(document["revision"])
    if document["schema_version"] < 3 and document["is_final"]:
        return V2_FINAL_REVISION + revision
    return revision


def _word_to_dict(word: Word) -> dict[str, Any]:
    return {"start": word.start, "end": word.end, "word": word.text, "probability": word.probability}


def _word_from_dict(item: dict[str, Any]) -> Word:
    return Word(
        start=float(item["start"]),
        end=float(item["end"]),
        text=item["word"],
        probability=float(item["probability"]),
    )
