"""One batched encode, greedy generate and word alignment for windows of one encoder length.

faster-whisper's public ``transcribe`` decodes one input at a time and always pads it to 30 s, so
this module calls the pieces underneath (``encode``, ``model.generate``, ``get_prompt``,
``_split_segments_by_timestamps``, ``find_alignment``): they are private to faster-whisper 1.2.1,
which is why pyproject.toml pins that exact version.

A window may carry a **prefix**: words already final in it. The decoder is forced through them
(CTranslate2 decodes the start tokens one by one) and continues after them, so the result holds only
the words that follow, and a word once final is never decoded again. A group is windows that share an
encoder input length and a previous-text prompt length (CTranslate2 needs one of each per call);
prefixes may differ in length.

CTranslate2's Whisper ``generate`` decodes at most ``max_length / 2`` steps, the forced prefix
included, so the length passed is twice the steps a window may take. A decode that runs into its own
token budget is marked ``truncated`` (a loop). Each decode also reports where Whisper would resume
(``resume``): faster-whisper's loop seeks there after a decode that ends on a pair of timestamps, and so
does the transcriber when speech remains after it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens

from stream_app.inference.alignment import Piece, WordTiming, align_words
from stream_app.inference.buffers import FeatureBufferPool

Samples = npt.NDArray[np.float32]
MAX_STEPS = 224  # CTranslate2 decodes at most max_length / 2 = 448 / 2 steps
PROMPT_LIMIT = 64  # previous-text tokens a prompt keeps (its latest)
PROMPT_BUCKET = 16  # prompt lengths are multiples of this (windows batch by prompt length)


@dataclass(frozen=True)
class Greedy:
    """One window's greedy (temperature 0) decode: its new tokens and the figures the guards read."""

    tokens: list[int]  # after the prefix
    text: str
    avg_logprob: float
    no_speech_prob: float
    truncated: bool = False  # stopped by the token budget, not by the end-of-text token
    resume: float | None = None  # seconds into the window where Whisper would decode on (None: to the end)


@dataclass
class Segment:
    """One decoded segment in window time, with its words and the figures of the decode that made it."""

    start: float
    end: float
    text: str
    words: list[WordTiming]
    avg_logprob: float
    no_speech_prob: float


@dataclass
class DecodedGroup:
    """A group's greedy decodes, with the encoder output that alignment reuses."""

    tokenizer: Tokenizer
    encoder_output: Any
    contents: list[int]  # content frames per window
    prefixes: list[list[int]]  # forced tokens per window (after the prompt)
    greedy: list[Greedy]


class BatchDecoder:
    """Runs groups of windows through one loaded model; safe to share between threads."""

    def __init__(self, model: WhisperModel, *, beam_size: int = 1, buffers: FeatureBufferPool | None = None) -> None:
        """Wrap a loaded model; ``buffers`` computes features in reused per-thread arrays (None: fresh)."""
        self.model = model
        self.beam_size = beam_size
        self.buffers = buffers
        self._tokenizers: dict[str, Tokenizer] = {}
        self._lock = threading.Lock()

    def tokenizer(self, language: str) -> Tokenizer:
        """Return the transcription tokenizer for ``language`` (built once, then shared)."""
        with self._lock:
            tokenizer = self._tokenizers.get(language)
            if tokenizer is None:
                multilingual = bool(self.model.model.is_multilingual)
                tokenizer = Tokenizer(self.model.hf_tokenizer, multilingual, task="transcribe", language=language)
                self._tokenizers[language] = tokenizer
            return tokenizer

    def prompt(self, tokenizer: Tokenizer, previous_text: str, limit: int = PROMPT_LIMIT) -> list[int]:
        """Return the decoder prompt: previous text, then the start tokens.

        The previous text is cut to its last ``limit`` tokens, and then to a multiple of
        `PROMPT_BUCKET` tokens: windows are batched by prompt length, so few lengths batch well.
        """
        previous = tokenizer.encode(" " + previous_text.strip()) if previous_text.strip() else []
        previous = previous[-limit:] if limit else []
        previous = previous[len(previous) % PROMPT_BUCKET :]
        return list(self.model.get_prompt(tokenizer, previous, without_timestamps=False))

    @staticmethod
    def prefix(tokenizer: Tokenizer, text: str) -> list[int]:
        """Return the forced tokens for words already final: an opening timestamp and their text."""
        if not text.strip():
            return []
        return [tokenizer.timestamp_begin, *tokenizer.encode(" " + text.strip())]

    def decode(
        self,
        audios: list[Samples],
        frames: int,
        prompts: list[list[int]],
        language: str,
        budgets: list[int] | None = None,
        prefixes: list[list[int]] | None = None,
    ) -> DecodedGroup:
        """Encode the windows at ``frames`` mel frames each and decode them greedily in one call.

        All ``prompts`` must have the same length. ``budgets`` caps each window's new tokens (default:
        as many as fit); a decode that reaches its cap is marked ``truncated``.
        """
        model = self.model
        prefixes = prefixes or [[] for _ in audios]
        tokenizer = self.tokenizer(language)
        contents, features = self._features(audios, frames)
        encoder_output = model.encode(features)
        longest = max(len(p) for p in prefixes)
        rooms = [MAX_STEPS - len(p) for p in prefixes]  # each window's own: never its companions' prefixes
        caps = [min(room, b) for room, b in zip(rooms, budgets, strict=True)] if budgets is not None else rooms
        max_length = min(model.max_length, len(prompts[0]) + 2 * (longest + max(caps) + 1))
        results = model.model.generate(
            encoder_output,
            [prompt + prefix for prompt, prefix in zip(prompts, prefixes, strict=True)],
            beam_size=self.beam_size,
            patience=1.0,
            length_penalty=1.0,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            max_length=max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=list(get_suppressed_tokens(tokenizer, [-1])),
            max_initial_timestamp_index=round(1.0 / model.time_precision),
        )
        greedy = []
        for result, prefix, cap, content in zip(results, prefixes, caps, contents, strict=True):
            sequence = list(result.sequences_ids[0])
            # CTranslate2 scores a forced token 0 and divides the sum by the whole sequence's length, the
            # forced prefix included: the new tokens' log-probability is the score times that length
            logprob = float(result.scores[0]) * len(sequence)
            if sequence[: len(prefix)] == prefix:
                sequence = sequence[len(prefix) :]
            tokens = sequence[:cap]
            truncated = len(sequence) >= cap
            avg_logprob = logprob / (len(sequence) + 1) if sequence else 0.0  # as faster-whisper averages
            text = tokenizer.decode([t for t in tokens if t < tokenizer.eot]).strip()
            resume = self._resume(tokenizer, prefix + tokens, content)
            greedy.append(Greedy(tokens, text, avg_logprob, float(result.no_speech_prob), truncated, resume))
        return DecodedGroup(tokenizer, encoder_output, contents, prefixes, greedy)

    def segments(self, group: DecodedGroup, wanted: list[bool]) -> list[list[Segment]]:
        """Cut the wanted windows' decodes into timed segments of their new words (others get none)."""
        tokenizer = group.tokenizer
        pieces = [
            self._split(tokenizer, prefix + g.tokens, content) if keep else []
            for g, prefix, content, keep in zip(group.greedy, group.prefixes, group.contents, wanted, strict=True)
        ]
        words = align_words(self.model, tokenizer, group.encoder_output, pieces, group.contents)
        out: list[list[Segment]] = []
        for greedy, prefix, item_pieces, item_words in zip(group.greedy, group.prefixes, pieces, words, strict=True):
            forced = len([t for t in prefix if t < tokenizer.eot])
            segments = []
            for piece, piece_words in zip(item_pieces, item_words, strict=True):
                # a word whose first token lies in the forced prefix is already final (a word that the
                # decode extends past the prefix, such as a suffix, stays as it was made final)
                fresh = [w for w in piece_words if int(w["first_token"]) >= forced]
                text = "".join(str(w["word"]) for w in fresh)
                if piece["start"] == piece["end"] or not text.strip():
                    continue
                segments.append(
                    Segment(piece["start"], piece["end"], text, fresh, greedy.avg_logprob, greedy.no_speech_prob)
                )
            out.append(segments)
        return out

    def _features(self, audios: list[Samples], frames: int) -> tuple[list[int], Samples]:
        """Build the [batch, mels, frames] encoder input; return it with each window's content frames.

        With buffer reuse the array is this thread's own and is overwritten by its next batch; it
        only has to live until ``encode`` returns, which copies it into CTranslate2's memory.
        """
        if self.buffers is not None:
            buffers = self.buffers.get()
            batch = buffers.batch_view(len(audios), frames)
            return [buffers.write_features(batch, i, audio) for i, audio in enumerate(audios)], batch
        contents: list[int] = []
        features = np.zeros((len(audios), self.model.feature_extractor.mel_filters.shape[0], frames), np.float32)
        for i, audio in enumerate(audios):
            mel = self.model.feature_extractor(audio)
            content = int(mel.shape[-1]) - 1  # as WhisperModel.generate_segments counts content frames
            used = min(content, frames)
            features[i, :, :used] = mel[:, :used]
            contents.append(content)
        return contents, features

    def _resume(self, tokenizer: Tokenizer, tokens: list[int], content_frames: int) -> float | None:
        """Where Whisper would decode on after ``tokens`` (seconds), or None when it heard the window out."""
        if not tokens:
            return None
        duration = content_frames * self.model.feature_extractor.time_per_frame
        _, seek, single_ending = self.model._split_segments_by_timestamps(
            tokenizer=tokenizer,
            tokens=tokens,
            time_offset=0.0,
            segment_size=content_frames,
            segment_duration=duration,
            seek=0,
        )
        if single_ending or seek >= content_frames:
            return None
        return float(seek) * float(self.model.feature_extractor.time_per_frame)

    def _split(self, tokenizer: Tokenizer, tokens: list[int], content_frames: int) -> list[Piece]:
        """Cut a decode into timestamped pieces; an unfinished last piece runs to the window's end."""
        duration = content_frames * self.model.feature_extractor.time_per_frame
        pieces, _, single_ending = self.model._split_segments_by_timestamps(
            tokenizer=tokenizer,
            tokens=tokens,
            time_offset=0.0,
            segment_size=content_frames,
            segment_duration=duration,
            seek=0,
        )
        used = sum(len(p["tokens"]) for p in pieces)
        tail = tokens[used:]
        if not single_ending and any(t < tokenizer.eot for t in tail):
            start = (
                (tail[0] - tokenizer.timestamp_begin) * self.model.time_precision
                if tail[0] >= tokenizer.timestamp_begin
                else (pieces[-1]["end"] if pieces else 0.0)
            )
            pieces.append({"seek": 0, "start": start, "end": duration, "tokens": tail})
        return list(pieces)
