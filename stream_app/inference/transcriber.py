"""Whisper on one window, or on many windows of different streams in one batched CTranslate2 call.

One loaded ``faster_whisper.WhisperModel`` is shared by the pool's threads; CTranslate2 runs up to
``inter_threads`` calls at once and releases the GIL while it works. Every window is gated by Silero
VAD first: a window without speech returns ``skipped_silence=True`` and never reaches the decoder.
Decoding never feeds previous text as a prompt (that snowballs hallucinations across windows).

Both paths decode the whole window (VAD gates, it does not cut), so their results agree and word
times stay in window time until they are shifted by ``job.start`` into stream time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from faster_whisper import WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens, merge_punctuations
from faster_whisper.vad import VadOptions, get_speech_timestamps

from stream_app.inference.buffers import HOP_LENGTH, N_FFT, N_FRAMES, FeatureBufferPool
from stream_app.inference.exceptions import ModelNotFound
from stream_app.inference.types import WindowJob, WindowTranscript, Word

SAMPLE_RATE = 16000
MAX_WINDOW_SECONDS = 30.0  # Whisper's receptive field; longer jobs take the sequential path
_PREPEND = "\"'“¿([{-"
_APPEND = "\"'.。,，!！?？:：”)]}、"  # noqa: RUF001
_SENTENCE_END = ".。!！?？"  # noqa: RUF001


@dataclass(frozen=True)
class DecodeGuards:
    """Thresholds that reject hallucinated or silent output (Whisper's own defaults)."""

    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    temperatures: tuple[float, ...] = (0.0, 0.4)  # one retry at most: bounded cost per window

    def needs_fallback(self, avg_logprob: float, compression_ratio: float) -> bool:
        """Whisper's rule for re-decoding at the next temperature."""
        return compression_ratio > self.compression_ratio_threshold or avg_logprob < self.log_prob_threshold

    def is_no_speech(self, no_speech_prob: float, avg_logprob: float) -> bool:
        """Whisper's rule for dropping a decode as silence: likely no speech and not confidently decoded."""
        return no_speech_prob > self.no_speech_threshold and avg_logprob < self.log_prob_threshold


@dataclass
class _Segment:
    """One decoded segment in window time, with the figures of the decode that made it."""

    start: float
    end: float
    text: str
    words: list[dict[str, Any]]
    avg_logprob: float
    no_speech_prob: float


class WhisperTranscriber:
    """A loaded Whisper model that turns ``WindowJob`` s into ``WindowTranscript`` s; safe to share."""

    def __init__(
        self,
        model_path: Path,
        *,
        model_name: str,
        precision: str,
        device: str = "cpu",
        device_index: int = 0,
        cpu_threads: int = 0,
        num_workers: int = 1,
        language: str | None = "en",
        beam_size: int = 1,
        vad: bool = True,
        vad_options: VadOptions | None = None,
        guards: DecodeGuards | None = None,
        reuse_buffers: bool = True,
    ) -> None:
        """Load the model from a local folder (never from a hub).

        Args:
            model_path: A CTranslate2 Whisper folder (see ``resolve_model``).
            model_name: The name results carry (``tiny.en``, ``base``, a path).
            precision: A CTranslate2 compute type the device supports (see ``resolve_precision``).
            device: ``cpu`` or ``cuda``.
            device_index: Which GPU.
            cpu_threads: CTranslate2 ``intra_threads`` (0: its default).
            num_workers: CTranslate2 ``inter_threads``: how many calls run at once on this model.
            language: Spoken language, or None to detect it per window (multilingual models).
            beam_size: 1 is greedy decoding.
            vad: Gate windows with Silero VAD.
            vad_options: Silero settings; faster-whisper's defaults with a 500 ms minimum silence.
            guards: Decoding thresholds.
            reuse_buffers: Compute the batched path's features in per-thread arrays kept between
                calls (bit-identical results); False allocates afresh per window, as faster-whisper
                does (``bench memory`` compares the two).
        """
        if not (Path(model_path) / "model.bin").is_file():
            raise ModelNotFound(f"{model_path} is not a CTranslate2 model folder (no model.bin)")
        self.model_name = model_name
        self.precision = precision
        self.device = device
        self.beam_size = beam_size
        self.vad = vad
        self.vad_options = vad_options or VadOptions(min_silence_duration_ms=500)
        self.guards = guards or DecodeGuards()
        self._model = WhisperModel(
            str(model_path),
            device=device,
            device_index=device_index,
            compute_type=precision,
            cpu_threads=cpu_threads,
            num_workers=num_workers,
            local_files_only=True,
        )
        multilingual = bool(self._model.model.is_multilingual)
        self.language = language if multilingual else "en"
        self._tokenizers: dict[str, Tokenizer] = {}
        self._tokenizer_lock = threading.Lock()
        extractor = self._model.feature_extractor
        reusable = (extractor.n_fft, extractor.hop_length, extractor.nb_max_frames) == (N_FFT, HOP_LENGTH, N_FRAMES)
        self._buffers = FeatureBufferPool(extractor.mel_filters) if reuse_buffers and reusable else None

    @property
    def reuses_buffers(self) -> bool:
        """Whether the batched path computes features in reused per-thread arrays."""
        return self._buffers is not None

    @property
    def is_multilingual(self) -> bool:
        """Whether the model can transcribe languages other than English."""
        return bool(self._model.model.is_multilingual)

    def close(self) -> None:
        """Free the model's native memory now (the registry calls it on eviction, with no work in flight)."""
        self._model.model.unload_model()

    def has_speech(self, samples: npt.NDArray[np.float32]) -> bool:
        """Whether Silero VAD finds any speech in the samples (always True with VAD off)."""
        if not self.vad:
            return True
        return bool(get_speech_timestamps(samples, self.vad_options, sampling_rate=SAMPLE_RATE))

    def transcribe_window(self, job: WindowJob) -> WindowTranscript:
        """Transcribe one window through faster-whisper's sequential path (temperature fallback included)."""
        started = time.perf_counter()
        samples = _mono_float32(job.samples)
        if not self.has_speech(samples):
            return self._silence(job, started)
        return self._decode_single(job, samples, started)

    def transcribe_windows(self, jobs: Sequence[WindowJob]) -> list[WindowTranscript]:
        """Transcribe several windows (any streams) with one batched encode, generate and align.

        Windows longer than 30 s, auto-detected languages, and windows whose greedy decode trips a
        guard (which needs a temperature retry) go through ``transcribe_window``'s path, so the
        result for a window never depends on which other windows shared its batch.
        """
        started = time.perf_counter()
        results: list[WindowTranscript | None] = [None] * len(jobs)
        batch: list[tuple[int, npt.NDArray[np.float32]]] = []
        for i, job in enumerate(jobs):
            samples = _mono_float32(job.samples)
            if not self.has_speech(samples):
                results[i] = self._silence(job, started)
            elif len(samples) > MAX_WINDOW_SECONDS * SAMPLE_RATE or self.language is None:
                results[i] = self._decode_single(job, samples, started)
            else:
                batch.append((i, samples))
        if len(batch) == 1:
            i, samples = batch[0]
            results[i] = self._decode_single(jobs[i], samples, started)
        elif batch:
            decoded = self._decode_batch([samples for _, samples in batch])
            elapsed = time.perf_counter() - started
            for (i, samples), segments in zip(batch, decoded, strict=True):
                if segments is None:  # a guard asked for a temperature retry
                    results[i] = self._decode_single(jobs[i], samples, time.perf_counter())
                else:
                    results[i] = self._summarise(
                        jobs[i], segments, self.language or "en", elapsed, len(batch)
                    )
        return [r for r in results if r is not None]

    # -- the sequential path --------------------------------------------------------------------

    def _decode_single(
        self, job: WindowJob, samples: npt.NDArray[np.float32], started: float
    ) -> WindowTranscript:
        segments_iter, info = self._model.transcribe(
            samples,
            language=self.language,
            beam_size=self.beam_size,
            temperature=list(self.guards.temperatures),
            compression_ratio_threshold=self.guards.compression_ratio_threshold,
            log_prob_threshold=self.guards.log_prob_threshold,
            no_speech_threshold=None,  # applied below, so that dropped decodes still report their figures
            condition_on_previous_text=False,
            word_timestamps=True,
            vad_filter=False,  # VAD already gated this window; decode all of it, as the batched path does
        )
        segments = [  # consume the lazy generator: nothing runs until it is iterated
            _Segment(
                s.start,
                s.end,
                s.text,
                [
                    {"word": w.word, "start": w.start, "end": w.end, "probability": w.probability}
                    for w in (s.words or [])
                ],
                s.avg_logprob,
                s.no_speech_prob,
            )
            for s in segments_iter
        ]
        return self._summarise(job, segments, info.language, time.perf_counter() - started, 1)

    # -- the batched path -------------------------------------------------------------------------

    def _tokenizer(self, language: str) -> Tokenizer:
        with self._tokenizer_lock:
            tokenizer = self._tokenizers.get(language)
            if tokenizer is None:
                tokenizer = Tokenizer(
                    self._model.hf_tokenizer, self.is_multilingual, task="transcribe", language=language
                )
                self._tokenizers[language] = tokenizer
            return tokenizer

    def _decode_batch(self, audios: list[npt.NDArray[np.float32]]) -> list[list[_Segment] | None]:
        """Decode all windows at once at temperature 0; None marks a window that needs a retry."""
        model = self._model
        tokenizer = self._tokenizer(self.language or "en")
        frames, features = self._features(audios)
        encoder_output = model.encode(features)
        prompt = model.get_prompt(tokenizer, [], without_timestamps=False)
        results = model.model.generate(
            encoder_output,
            [list(prompt) for _ in audios],
            beam_size=self.beam_size,
            patience=1.0,
            length_penalty=1.0,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            max_length=model.max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=list(get_suppressed_tokens(tokenizer, [-1])),
            max_initial_timestamp_index=round(1.0 / model.time_precision),
        )
        decoded: list[list[_Segment] | None] = []
        pieces: list[list[dict[str, Any]]] = []
        for result, content in zip(results, frames, strict=True):
            tokens = list(result.sequences_ids[0])
            avg_logprob = float(result.scores[0]) * len(tokens) / (len(tokens) + 1)
            text = tokenizer.decode(tokens).strip()
            if len(self.guards.temperatures) > 1 and self.guards.needs_fallback(
                avg_logprob, get_compression_ratio(text)
            ):
                decoded.append(None)
                pieces.append([])
                continue
            pieces.append(self._split(tokenizer, tokens, content))
            decoded.append([])
            for piece in pieces[-1]:
                piece["avg_logprob"], piece["no_speech_prob"] = avg_logprob, float(result.no_speech_prob)
        words = self._align(tokenizer, encoder_output, pieces, frames)
        for item, (segments, item_pieces) in enumerate(zip(decoded, pieces, strict=True)):
            if segments is None:
                continue
            for piece, piece_words in zip(item_pieces, words[item], strict=True):
                text = tokenizer.decode(piece["tokens"])
                if piece["start"] == piece["end"] or not text.strip():
                    continue
                segments.append(
                    _Segment(
                        piece["start"],
                        piece["end"],
                        text,
                        piece_words,
                        piece["avg_logprob"],
                        piece["no_speech_prob"],
                    )
                )
        return decoded

    def _features(self, audios: list[npt.NDArray[np.float32]]) -> tuple[list[int], npt.NDArray[np.float32]]:
        """Build the [batch, mels, 3000] encoder input; return it with each window's content frames.

        With buffer reuse the array is this thread's own and is overwritten by its next batch; it
        only has to live until ``encode`` returns, which copies it into CTranslate2's memory.
        """
        frames: list[int] = []
        if self._buffers is not None:
            buffers = self._buffers.get()
            batch = buffers.batch_view(len(audios))
            frames = [buffers.write_features(batch, i, audio) for i, audio in enumerate(audios)]
            return frames, batch
        features = []
        for audio in audios:
            mel = self._model.feature_extractor(audio)
            content = mel.shape[-1] - 1  # as WhisperModel.generate_segments counts content frames
            frames.append(content)
            features.append(pad_or_trim(mel[:, :content]))
        return frames, np.stack(features)

    def _split(self, tokenizer: Tokenizer, tokens: list[int], content_frames: int) -> list[dict[str, Any]]:
        """Cut a decode into timestamped segments; an unfinished last segment runs to the window's end."""
        duration = content_frames * self._model.feature_extractor.time_per_frame
        pieces, _, single_ending = self._model._split_segments_by_timestamps(
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
                (tail[0] - tokenizer.timestamp_begin) * self._model.time_precision
                if tail[0] >= (tokenizer.timestamp_begin)
                else (pieces[-1]["end"] if pieces else 0.0)
            )
            pieces.append({"seek": 0, "start": start, "end": duration, "tokens": tail})
        return list(pieces)

    def _align(
        self,
        tokenizer: Tokenizer,
        encoder_output: Any,
        pieces: list[list[dict[str, Any]]],
        frames: list[int],
    ) -> list[list[list[dict[str, Any]]]]:
        """Word timings for every window from one batched ``align`` call, each window on its own."""
        text_tokens = [[t for p in item for t in p["tokens"] if t < tokenizer.eot] for item in pieces]
        alignments = self._model.find_alignment(tokenizer, text_tokens, encoder_output, frames)
        if not alignments:
            alignments = [[] for _ in pieces]
        return [
            _words_for_pieces(item, alignment, tokenizer)
            for item, alignment in zip(pieces, alignments, strict=True)
        ]

    # -- results ----------------------------------------------------------------------------------

    def _silence(self, job: WindowJob, started: float) -> WindowTranscript:
        return WindowTranscript(
            words=(),
            text="",
            avg_logprob=0.0,
            no_speech_prob=1.0,
            compression_ratio=0.0,
            model=self.model_name,
            precision=self.precision,
            language=self.language or "en",
            skipped_silence=True,
            inference_seconds=time.perf_counter() - started,
        )

    def _summarise(
        self, job: WindowJob, segments: list[_Segment], language: str, elapsed: float, batch_size: int
    ) -> WindowTranscript:
        """Keep the segments that pass the no-speech guard; aggregate the figures over all decoded ones."""
        kept = [s for s in segments if not self.guards.is_no_speech(s.no_speech_prob, s.avg_logprob)]
        weights = [max(s.end - s.start, 1e-3) for s in segments]
        avg_logprob = (
            float(np.average([s.avg_logprob for s in segments], weights=weights)) if segments else 0.0
        )
        text = "".join(s.text for s in kept).strip()
        words = tuple(
            Word(
                start=round(job.start + float(w["start"]), 3),
                end=round(job.start + float(w["end"]), 3),
                text=str(w["word"]).strip(),
                probability=float(w["probability"]),
            )
            for s in kept
            for w in s.words
            if str(w["word"]).strip()
        )
        return WindowTranscript(
            words=words,
            text=text,
            avg_logprob=avg_logprob,
            no_speech_prob=max((s.no_speech_prob for s in segments), default=0.0),
            compression_ratio=get_compression_ratio(text) if text else 0.0,
            model=self.model_name,
            precision=self.precision,
            language=language,
            inference_seconds=elapsed,
            extra={"batch_size": float(batch_size), "segments": float(len(kept))},
        )


def _mono_float32(samples: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    array = np.asarray(samples, dtype=np.float32)
    return array.mean(axis=1).astype(np.float32) if array.ndim == 2 else array.reshape(-1)


def _words_for_pieces(
    pieces: list[dict[str, Any]], alignment: list[dict[str, Any]], tokenizer: Tokenizer
) -> list[list[dict[str, Any]]]:
    """Distribute one window's aligned words over its segments and tidy their times.

    This is faster-whisper's ``WhisperModel.add_word_timestamps`` (MIT) for a single window whose
    last speech time starts at 0, so a window's words never depend on the others in its batch.
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
    merge_punctuations(alignment, _PREPEND, _APPEND)

    out: list[list[dict[str, Any]]] = []
    index = 0
    last_speech = 0.0
    for piece in pieces:
        n_text = len([t for t in piece["tokens"] if t < tokenizer.eot])
        saved = 0
        words: list[dict[str, Any]] = []
        while index < len(alignment) and saved < n_text:
            timing = alignment[index]
            if timing["word"]:
                words.append(
                    {
                        "word": timing["word"],
                        "start": round(float(timing["start"]), 2),
                        "end": round(float(timing["end"]), 2),
                        "probability": float(timing["probability"]),
                    }
                )
            saved += len(timing["tokens"])
            index += 1
        if words:
            first, later = words[0], words[1:]
            if first["end"] - last_speech > median * 4 and (
                first["end"] - first["start"] > longest
                or (later and later[0]["end"] - first["start"] > longest * 2)
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
            last_speech = piece["end"]
        out.append(words)
    return out
