"""Cache entries as bytes: a format version byte, a checksum, then orjson with the words and their window start.

The checksum (blake2b, 16 bytes, of the body) turns a damaged entry into a miss: a flipped bit inside
a word's text would still be valid JSON, and come back as another transcript.

A replay of a stream meets its own entries at the same window start and gets the words back bit for
bit, exactly as the model made them: the stream's later decisions (commits, prefixes, cache keys)
depend on those times, so a hit must equal a decode. The same audio at another stream time (a jingle)
gets its words moved by the difference.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import orjson

from stream_app.cache.exceptions import CorruptEntryError
from stream_app.inference.types import WindowTranscript, Word

FORMAT_VERSION = 4  # 3: stream times as decoded, with their window start; speech left without words; 4: checksum
_DIGEST = 16  # bytes of the body's checksum after the version byte
_STREAM_DIGITS = 3  # a moved time is rounded as the transcriber rounds (milliseconds)


def encode_entry(transcript: WindowTranscript, window_start: float) -> bytes:
    """Encode a transcript whose words are in stream time, storing them relative to ``window_start``."""
    body = {
        "start": window_start,
        "words": [[w.start, w.end, w.text, w.probability] for w in transcript.words],
        "text": transcript.text,
        "avg_logprob": transcript.avg_logprob,
        "no_speech_prob": transcript.no_speech_prob,
        "compression_ratio": transcript.compression_ratio,
        "model": transcript.model,
        "precision": transcript.precision,
        "language": transcript.language,
        "skipped_silence": transcript.skipped_silence,
        "escalated_from": transcript.escalated_from,
        "context_fallback": transcript.context_fallback,
        "rejected": transcript.rejected_preview,
        "undecoded": [[a, b] for a, b in transcript.undecoded],
        "extra": transcript.extra,
    }
    data = orjson.dumps(body)
    return bytes([FORMAT_VERSION]) + entry_checksum(data) + data


def entry_checksum(body: bytes) -> bytes:
    """Return the checksum an entry carries for its JSON ``body``."""
    return hashlib.blake2b(body, digest_size=_DIGEST, person=b"stream-app-entry").digest()


def decode_entry(data: bytes, window_start: float) -> WindowTranscript:
    """Decode an entry, putting its words back in stream time from ``window_start``.

    The result is marked ``cached`` and carries no inference time, since none was spent on it.

    Raises:
        CorruptEntryError: for an unknown version, a checksum mismatch, bad JSON, or fields of the wrong shape.
    """
    if not data or data[0] != FORMAT_VERSION:
        version = data[0] if data else None
        raise CorruptEntryError(f"unknown cache entry format version {version!r}")
    if len(data) < 1 + _DIGEST or data[1 : 1 + _DIGEST] != entry_checksum(data[1 + _DIGEST :]):
        raise CorruptEntryError("the entry does not match its checksum")
    try:
        body = orjson.loads(data[1 + _DIGEST :])
        if not isinstance(body, dict):
            raise CorruptEntryError("entry body is not an object")
        shift = window_start - _float(body["start"])
        words = tuple(_word(item, shift) for item in _list(body["words"]))
        extra = body["extra"]
        if not isinstance(extra, dict):
            raise CorruptEntryError("extra is not an object")
        escalated = body["escalated_from"]
        if escalated is not None and not isinstance(escalated, str):
            raise CorruptEntryError("escalated_from is not a string")
        fallback = body["context_fallback"]
        if fallback is not None and not isinstance(fallback, str):
            raise CorruptEntryError("context_fallback is not a string")
        undecoded = tuple(_span(item, shift) for item in _list(body["undecoded"]))
        return WindowTranscript(
            words=words,
            text=_str(body["text"]),
            avg_logprob=_float(body["avg_logprob"]),
            no_speech_prob=_float(body["no_speech_prob"]),
            compression_ratio=_float(body["compression_ratio"]),
            model=_str(body["model"]),
            precision=_str(body["precision"]),
            language=_str(body["language"]),
            skipped_silence=_bool(body["skipped_silence"]),
            escalated_from=escalated,
            context_fallback=fallback,
            rejected_preview=_bool(body["rejected"]),
            undecoded=undecoded,
            cached=True,
            inference_seconds=0.0,
            extra={_str(k): _float(v) for k, v in extra.items()},
        )
    except CorruptEntryError:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CorruptEntryError(f"undecodable cache entry: {exc}") from exc


def _word(item: Any, window_start: float) -> Word:
    fields = _list(item)
    if len(fields) != 4:
        raise CorruptEntryError("a word needs start, end, text and probability")
    start, end, text, probability = fields
    return Word(
        start=round(_float(start) + window_start, _STREAM_DIGITS),
        end=round(_float(end) + window_start, _STREAM_DIGITS),
        text=_str(text),
        probability=_float(probability),
    )


def _span(item: Any, window_start: float) -> tuple[float, float]:
    fields = _list(item)
    if len(fields) != 2:
        raise CorruptEntryError("a span needs a start and an end")
    return round(_float(fields[0]) + window_start, _STREAM_DIGITS), round(
        _float(fields[1]) + window_start, _STREAM_DIGITS
    )


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise CorruptEntryError("expected a list")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise CorruptEntryError("expected a string")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise CorruptEntryError("expected true or false")
    return value


def _float(value: Any) -> float:
    if value is None:  # orjson writes NaN and infinities as null; they come back as NaN
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CorruptEntryError("expected a number")
    return float(value)
