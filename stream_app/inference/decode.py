"""One batched encode, greedy generate and word alignment for windows of one encoder length.

faster-whisper's public ``transcribe`` decodes one input at a time and always pads it to 30 s, so
this module calls the pieces underneath (``encode``, ``model.generate``, ``get_prompt``,
``_split_segments_by_timestamps``, ``find_alignment``): they are private to faster-whisper 1.2.1,
which is why pyproject.toml pins that exact version.

A group is windows that share an encoder input length and a prompt length (CTranslate2 needs one
of each per call). The decode is split in two so the caller can judge each window's greedy result
(the guards) before paying for its word alignment.
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


@dataclass(frozen=True)
class Greedy:
    """One window's greedy (temperature 0) decode: its tokens and the figures the guards read."""

    tokens: list[int]
    text: str
    avg_logprob: float
    no_speech_prob: float
    truncated: bool = False  # stopped by the token budget, not by the end-of-text token


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

    def prompt(self, tokenizer: Tokenizer, previous_text: str) -> list[int]:
        """Return the decoder prompt: previous text (when given, at most half the context), then the start tokens."""
        previous = tokenizer.encode(" " + previous_text.strip()) if previous_text.strip() else []
        return list(self.model.get_prompt(tokenizer, previous, without_timestamps=False))

    def decode(
        self,
        audios: list[Samples],
        frames: int,
        prompts: list[list[int]],
        language: str,
        max_new_tokens: int | None = None,
    ) -> DecodedGroup:
        """Encode the windows at ``frames`` mel frames each and decode them greedily in one call.

        All ``prompts`` must have the same length. ``max_new_tokens`` caps each decode (default: the
        model's 448 tokens in all); a decode that reaches it is marked ``truncated``.
        """
        model = self.model
        max_length = (
            model.max_length if max_new_tokens is None else min(model.max_length, len(prompts[0]) + max_new_tokens)
        )
        tokenizer = self.tokenizer(language)
        contents, features = self._features(audios, frames)
        encoder_output = model.encode(features)
        results = model.model.generate(
            encoder_output,
            prompts,
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
        for result in results:
            tokens = list(result.sequences_ids[0])
            avg_logprob = float(result.scores[0]) * len(tokens) / (len(tokens) + 1)
            text = tokenizer.decode([t for t in tokens if t < tokenizer.eot]).strip()
            truncated = max_new_tokens is not None and len(tokens) >= max_length - len(prompts[0])
            greedy.append(Greedy(tokens, text, avg_logprob, float(result.no_speech_prob), truncated))
        return DecodedGroup(tokenizer, encoder_output, contents, greedy)

    def segments(self, group: DecodedGroup, wanted: list[bool]) -> list[list[Segment]]:
        """Cut the wanted windows' decodes into timed segments with word timings (others get none)."""
        tokenizer = group.tokenizer
        pieces = [
            self._split(tokenizer, g.tokens, content) if keep else []
            for g, content, keep in zip(group.greedy, group.contents, wanted, strict=True)
        ]
        words = align_words(self.model, tokenizer, group.encoder_output, pieces, group.contents)
        out: list[list[Segment]] = []
        for greedy, item_pieces, item_words in zip(group.greedy, pieces, words, strict=True):
            segments = []
            for piece, piece_words in zip(item_pieces, item_words, strict=True):
                text = tokenizer.decode(piece["tokens"])
                if piece["start"] == piece["end"] or not text.strip():
                    continue
                segments.append(
                    Segment(piece["start"], piece["end"], text, piece_words, greedy.avg_logprob, greedy.no_speech_prob)
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
