"""Word timings for a batch of decoded windows from the encoder output that decoded them.

CTranslate2's cross-attention alignment (through faster-whisper's ``find_alignment``) times the
words of the windows in a group on the same encoder output the decode used: with a fitted context the
alignment sees exactly the frames the decoder saw. One ``align`` call takes the windows whose decodes
have the same number of text tokens: CTranslate2 pads a batch's token sequences to its longest and its
alignment normalises over the token axis, so in a mixed batch a window's word times depended on its
companions (`test_fitted_context.py` shows one such shift), and a replay that batched differently re-cut
committed words. Each window's words are then tidied on their own (faster-whisper's rules for one
segment at offset 0), so a window's words never depend on the others in its batch.

A window of under two mel frames has no encoder frame to align against (`MIN_ALIGNED_FRAMES`): it gets
no word times, here and in faster-whisper's own loop (`AligningWhisperModel`), instead of an IndexError.
"""

from __future__ import annotations

import logging
from typing import Any

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import merge_punctuations

MIN_ALIGNED_FRAMES = 2  # the encoder halves the mel frames: fewer than this leaves nothing to align against
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"  # noqa: RUF001
_SENTENCE_END = ".。!！?？"  # noqa: RUF001

Piece = dict[str, Any]  # a timestamped piece of a decode: start, end, tokens (faster-whisper's shape)
WordTiming = dict[str, Any]  # word, start, end, probability

log = logging.getLogger(__name__)
_warned: set[str] = set()


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
    text_tokens = [
        [t for p in item for t in p["tokens"] if t < tokenizer.eot] if n >= MIN_ALIGNED_FRAMES else []
        for item, n in zip(pieces, frames, strict=True)
    ]
    alignments: list[list[WordTiming]] = [[] for _ in pieces]
    groups = same_length_groups(text_tokens)
    whole = len(groups) == 1 and len(groups[0]) == len(pieces)
    if groups and not whole and not rows_selectable(encoder_output):
        groups, whole = [list(range(len(pieces)))], True  # one call: word times may depend on the batch
    host = None if whole else HostRows(encoder_output)  # one copy to the host for all the calls
    for rows in groups:
        output = encoder_output if host is None else host.pick(rows)
        found = model.find_alignment(tokenizer, [text_tokens[r] for r in rows], output, [frames[r] for r in rows])
        for row, alignment in zip(rows, found or [[] for _ in rows], strict=True):
            alignments[row] = alignment
    return [words_for_pieces(item, alignment, tokenizer) for item, alignment in zip(pieces, alignments, strict=True)]


class AligningWhisperModel(WhisperModel):  # type: ignore[misc]
    """faster-whisper's model whose ``find_alignment`` gives a window of under two frames no words.

    ctranslate2 from 4.8.1 returns an empty alignment for such a window (before, (token, -1) pairs or a
    division by zero), and faster-whisper 1.2.1 then raises an IndexError (its pull request #1460, open):
    its own loop aligns the remainder of a window that ends a frame after the last segment, so one
    decode failed, and failed again on every retry. Such a window gets no words, as
    ``find_alignment`` gives text that is all end-of-text.
    """

    def find_alignment(
        self,
        tokenizer: Tokenizer,
        text_tokens: list[list[int]],
        encoder_output: Any,
        num_frames: int | list[int],
        median_filter_width: int = 7,
    ) -> list[list[WordTiming]]:
        """Align the windows that have frames to align against; the others get no words.

        The short ones go through the same call as if they had the least frames that align (their rows
        are never picked apart: an encoder output on any device stays where it is) and are then blanked.
        """
        frames = [num_frames] * len(text_tokens) if isinstance(num_frames, int) else list(num_frames)
        short = {i for i, n in enumerate(frames) if n < MIN_ALIGNED_FRAMES}
        if not short:
            return super().find_alignment(  # type: ignore[no-any-return]
                tokenizer, text_tokens, encoder_output, num_frames, median_filter_width
            )
        padded = [max(n, MIN_ALIGNED_FRAMES) for n in frames]
        found = super().find_alignment(tokenizer, text_tokens, encoder_output, padded, median_filter_width)
        return [[] if i in short else words for i, words in enumerate(found)]


def same_length_groups(text_tokens: list[list[int]]) -> list[list[int]]:
    """Group the windows with text to align by their token count (positions, in order); empty ones are left out."""
    groups: dict[int, list[int]] = {}
    for position, tokens in enumerate(text_tokens):
        if tokens:
            groups.setdefault(len(tokens), []).append(position)
    return list(groups.values())


def rows_selectable(encoder_output: Any) -> bool:
    """Whether `HostRows` can pick rows of this encoder output (CPU, or the first accelerator)."""
    selectable = encoder_output.device == "cpu" or int(encoder_output.device_index) == 0
    if not selectable and "device" not in _warned:
        _warned.add("device")
        log.warning(
            "encoder output on %s:%d: windows are aligned in one call, so word times may depend on the batch",
            encoder_output.device,
            encoder_output.device_index,
        )
    return selectable


class HostRows:
    """An encoder output's rows in host memory, to hand some of them back to the model's device.

    CTranslate2's ``StorageView`` has no slicing: the rows go through host memory (an accelerator's
    output is copied to the CPU once, and each pick back; bfloat16, which numpy lacks, as float32).
    Only for CPU or the first accelerator (`rows_selectable`).
    """

    def __init__(self, encoder_output: Any) -> None:
        self._device = str(encoder_output.device)
        host = encoder_output if self._device == "cpu" else encoder_output.to_device(ctranslate2.Device.cpu)
        self._dtype = host.dtype
        if self._dtype == ctranslate2.DataType.bfloat16:
            host = host.to(ctranslate2.DataType.float32)
        self._rows = np.asarray(host)

    def pick(self, rows: list[int]) -> Any:
        """Return the output of the windows ``rows`` only, on the device and in the type it had."""
        picked = ctranslate2.StorageView.from_array(np.ascontiguousarray(self._rows[rows]))
        if self._dtype == ctranslate2.DataType.bfloat16:
            picked = picked.to(self._dtype)
        return picked if self._device == "cpu" else picked.to_device(ctranslate2.Device.cuda)


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
