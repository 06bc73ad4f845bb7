"""Word timings for a batch of decoded windows from the encoder output that decoded them.

One batched ``align`` call (CTranslate2's cross-attention alignment, through faster-whisper's
``find_alignment``) times the words of every window in a group, on the same encoder output the
decode used: with a fitted context the alignment sees exactly the frames the decoder saw. Each
window's words are then tidied on their own (faster-whisper's rules for one segment at offset 0),
so a window's words never depend on the others in its batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import merge_punctuations

PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"  # noqa: RUF001
_SENTENCE_END = ".。!！?？"  # noqa: RUF001

Piece = dict[str, Any]  # a timestamped piece of a decode: start, end, tokens (faster-whisper's shape)
WordTiming = dict[str, Any]  # word, start, end, probability


def align_words(
    model: WhisperModel,
    tokenizer: Tokenizer,
    encoder_output: Any,
    pieces: list[list[Piece]],
    frames: list[int],
) -> list[list[list[WordTiming]]]:
    """Return, per window and per piece, the timed words; a window with no pieces gets none.

    Args:
        model: The loaded model (its ``find_alignment`` runs CTranslate2's ``align``).
        tokenizer: The tokenizer the decode used.
        encoder_output: The group's encoder output, one row per window, in order.
        pieces: Each window's timestamped pieces (empty for a window whose words are not wanted).
        frames: Each window's content frames: alignment never reaches past its audio.
    """
    text_tokens = [[t for p in item for t in p["tokens"] if t < tokenizer.eot] for item in pieces]
    alignments = model.find_alignment(tokenizer, text_tokens, encoder_output, frames)
    if not alignments:
        alignments = [[] for _ in pieces]
    return [words_for_pieces(item, alignment, tokenizer) for item, alignment in zip(pieces, alignments, strict=True)]


def words_for_pieces(pieces: list[Piece], alignment: list[WordTiming], tokenizer: Tokenizer) -> list[list[WordTiming]]:
    """Distribute one window's aligned words over its pieces and tidy their times.

    This is faster-whisper's ``WhisperModel.add_word_timestamps`` (MIT) for a single window whose
    last speech time starts at 0.
    """
    durations = np.array([w["end"] - w["start"] for w in alignment])
    durations = durations[durations.nonzero()]
    median = min(0.7, float(np.median(durations))) if len(durations) > 0 else 0.0
    longest = median * 2
    if len(durations) > 0:
        for i in range(1, len(alignment)):
            if alignment[i]["end"] - alignment[i]["start"] > longest:
                if alignment[i]["word"] in _SENTENCE_END:
                    alignment[i]["end"] = alignment[i]["start"] + longest
                elif alignment[i - 1]["word"] in _SENTENCE_END:
                    alignment[i]["start"] = alignment[i]["end"] - longest
    merge_punctuations(alignment, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)

    out: list[list[WordTiming]] = []
    index = 0
    saved_total = 0
    last_speech = 0.0
    for piece in pieces:
        n_text = len([t for t in piece["tokens"] if t < tokenizer.eot])
        saved = 0
        words: list[WordTiming] = []
        while index < len(alignment) and saved < n_text:
            timing = alignment[index]
            if timing["word"]:
                words.append(
                    {
                        "word": timing["word"],
                        "start": round(float(timing["start"]), 2),
                        "end": round(float(timing["end"]), 2),
                        "probability": float(timing["probability"]),
                        "first_token": saved_total,  # position of its first text token in the decode
                        "tokens": len(timing["tokens"]),
                    }
                )
            saved += len(timing["tokens"])
            saved_total += len(timing["tokens"])
            index += 1
        if words:
            last_speech = _tidy(piece, words, median, longest, last_speech)
        out.append(words)
    return out


def _tidy(piece: Piece, words: list[WordTiming], median: float, longest: float, last_speech: float) -> float:
    """Clamp over-long first and last words to the piece's timestamps; return the piece's new end."""
    first, later = words[0], words[1:]
    if first["end"] - last_speech > median * 4 and (
        first["end"] - first["start"] > longest or (later and later[0]["end"] - first["start"] > longest * 2)
    ):
        if later and later[0]["end"] - later[0]["start"] > longest:
            boundary = max(later[0]["end"] / 2, later[0]["end"] - longest)
            first["end"] = later[0]["start"] = boundary
        first["start"] = max(0, first["end"] - longest)
    if piece["start"] < first["end"] and piece["start"] - 0.5 > first["start"]:
        first["start"] = max(0, min(first["end"] - median, piece["start"]))
    else:
        piece["start"] = first["start"]
    if piece["end"] > words[-1]["start"] and piece["end"] + 0.5 < words[-1]["end"]:
        words[-1]["end"] = max(words[-1]["start"] + median, piece["end"])
    else:
        piece["end"] = words[-1]["end"]
    return float(piece["end"])
