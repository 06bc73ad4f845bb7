"""Whisper on one window, or on many windows of different streams in batched CTranslate2 calls.

One loaded ``faster_whisper.WhisperModel`` is shared by the pool threads of its replica. Every window
is gated by Silero VAD first: a window without speech returns ``skipped_silence=True`` and never
reaches the decoder; the speech VAD measures also feeds the guards.

The batched path (``transcribe_windows``) sizes the encoder input to each window (``EncoderContext``,
fitted by default: the window's frames plus a margin, in fixed buckets) and groups windows by that
length and their prompt length (`stream_app.inference.decode`). A fitted decode that trips a guard
(`stream_app.inference.guards`) is re-run with the full 30 s context before its words are used; a
full-context decode that fails Whisper's own rule is re-decoded at the next temperature through
faster-whisper's sequential path (``transcribe_window``). Each window's result depends on its own
audio and prompt only, never on what shared its batch. Word times stay in window time until they are
shifted by ``job.start`` into stream time. A window's ``prompt`` is Whisper's previous-text prompt;
none is made up here (feeding decoded text back by default snowballs hallucinations).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from faster_whisper import WhisperModel
from faster_whisper.transcribe import get_compression_ratio
from faster_whisper.vad import VadOptions, get_speech_timestamps

from stream_app.inference.buffers import HOP_LENGTH, N_FFT, N_FRAMES, FeatureBufferPool
from stream_app.inference.context import (
    DEFAULT_CONTEXT,
    FRAMES_PER_SECOND,
    FULL_CONTEXT,
    EncoderContext,
    content_frames,
    group_by,
)
from stream_app.inference.decode import BatchDecoder, Segment
from stream_app.inference.exceptions import ModelNotFound
from stream_app.inference.guards import (
    CONTEXT_FALLBACKS,
    PREVIEWS_REJECTED,
    DecodeFigures,
    DecodeGuards,
    context_fallback_reason,
)
from stream_app.inference.types import Priority, WindowJob, WindowTranscript, Word

__all__ = ["MAX_WINDOW_SECONDS", "SAMPLE_RATE", "DecodeGuards", "EncoderContext", "WhisperTranscriber"]

SAMPLE_RATE = 16000
MAX_WINDOW_SECONDS = 30.0  # Whisper's receptive field; longer jobs take the sequential path


@dataclass
class _Pending:
    """A window on its way through the batched path."""

    index: int
    job: WindowJob
    samples: npt.NDArray[np.float32]
    voiced_seconds: float
    prompt: list[int] = field(default_factory=list)
    fallback: str | None = None


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
        context: EncoderContext | None = None,
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
            context: The batched path's encoder input length (default: fitted, 1.5 s margin).
            reuse_buffers: Compute the batched path's features in per-thread arrays kept between
                calls (bit-identical results); False allocates afresh per window, as faster-whisper
                does (``bench memory`` compares the two).
        """
        if not (Path(model_path) / "model.bin").is_file():
            raise ModelNotFound(f"{model_path} is not a CTranslate2 model folder (no model.bin)")
        self.model_name = model_name
        self.precision = precision
        self.device = device
        self.device_index = device_index
        self.beam_size = beam_size
        self.vad = vad
        self.vad_options = vad_options or VadOptions(min_silence_duration_ms=500)
        self.guards = guards or DecodeGuards()
        self.context = context or DEFAULT_CONTEXT
        self._model = WhisperModel(
            str(model_path),
            device=device,
            device_index=device_index,
            compute_type=precision,
            cpu_threads=cpu_threads,
            num_workers=num_workers,
            local_files_only=True,
        )
        self.language = language if self.is_multilingual else "en"
        extractor = self._model.feature_extractor
        reusable = (extractor.n_fft, extractor.hop_length, extractor.nb_max_frames) == (N_FFT, HOP_LENGTH, N_FRAMES)
        buffers = FeatureBufferPool(extractor.mel_filters) if reuse_buffers and reusable else None
        self.decoder = BatchDecoder(self._model, beam_size=beam_size, buffers=buffers)

    @property
    def reuses_buffers(self) -> bool:
        """Whether the batched path computes features in reused per-thread arrays."""
        return self.decoder.buffers is not None

    @property
    def is_multilingual(self) -> bool:
        """Whether the model can transcribe languages other than English."""
        return bool(self._model.model.is_multilingual)

    def close(self) -> None:
        """Free the model's native memory now (the registry calls it on eviction, with no work in flight)."""
        self._model.model.unload_model()

    def voiced_seconds(self, samples: npt.NDArray[np.float32]) -> float:
        """Seconds of speech Silero VAD finds in the samples (all of them with VAD off)."""
        if not self.vad:
            return len(samples) / SAMPLE_RATE
        spans = get_speech_timestamps(samples, self.vad_options, sampling_rate=SAMPLE_RATE)
        return sum(int(s["end"]) - int(s["start"]) for s in spans) / SAMPLE_RATE

    def has_speech(self, samples: npt.NDArray[np.float32]) -> bool:
        """Whether Silero VAD finds any speech in the samples (always True with VAD off)."""
        return self.voiced_seconds(samples) > 0

    def transcribe_window(self, job: WindowJob) -> WindowTranscript:
        """Transcribe one window through faster-whisper's sequential path (30 s context, temperature fallback)."""
        started = time.perf_counter()
        samples = _mono_float32(job.samples)
        if not self.has_speech(samples):
            return self._silence(started)
        return self._decode_single(job, samples, started)

    def transcribe_windows(
        self, jobs: Sequence[WindowJob], context: EncoderContext | None = None
    ) -> list[WindowTranscript]:
        """Transcribe several windows (any streams) with batched encodes, generates and alignments.

        ``context`` overrides the transcriber's encoder context for this call (benchmarks compare
        both on one loaded model). Windows longer than 30 s and auto-detected languages go through
        ``transcribe_window``'s path.
        """
        started = time.perf_counter()
        context = context or self.context
        results: list[WindowTranscript | None] = [None] * len(jobs)
        batched: list[_Pending] = []
        for i, job in enumerate(jobs):
            samples = _mono_float32(job.samples)
            voiced = self.voiced_seconds(samples)
            if voiced <= 0:
                results[i] = self._silence(started)
            elif len(samples) > MAX_WINDOW_SECONDS * SAMPLE_RATE or self.language is None:
                results[i] = self._decode_single(job, samples, started)
            else:
                batched.append(_Pending(i, job, samples, voiced))
        if batched:
            tokenizer = self.decoder.tokenizer(self.language or "en")
            for item in batched:
                item.prompt = self.decoder.prompt(tokenizer, item.job.prompt)
            full = self._fitted_pass(batched, context, results, started) if context.fitted else batched
            self._full_pass(full, results, started)
        return [r for r in results if r is not None]

    # -- the batched path -------------------------------------------------------------------------

    def _groups(self, items: list[_Pending], context: EncoderContext) -> list[tuple[int, list[_Pending]]]:
        """Group windows by (encoder frames, prompt length): each group is one CTranslate2 call."""
        keys = [(context.frames_for(content_frames(len(item.samples))), len(item.prompt)) for item in items]
        return [(key[0], [items[p] for p in positions]) for key, positions in group_by(keys).items()]

    def _fitted_pass(
        self, items: list[_Pending], context: EncoderContext, results: list[WindowTranscript | None], started: float
    ) -> list[_Pending]:
        """Decode with fitted context; keep what passes the guards, return the windows to re-run in full."""
        rerun: list[_Pending] = []
        for frames, group in self._groups(items, context):
            budget = self.guards.token_budget(frames / FRAMES_PER_SECOND)
            decoded = self.decoder.decode(
                [g.samples for g in group], frames, [g.prompt for g in group], self.language or "en", budget
            )
            wanted = []
            for item, greedy in zip(group, decoded.greedy, strict=True):
                figures = DecodeFigures(
                    greedy.text, greedy.avg_logprob, greedy.no_speech_prob, item.voiced_seconds, greedy.truncated
                )
                item.fallback = context_fallback_reason(figures, self.guards)
                if item.fallback is not None and item.job.priority == Priority.INTERIM:
                    # a preview is best effort: a full 30 s pass for it would cost more than it shows
                    PREVIEWS_REJECTED.labels(item.fallback).inc()
                    results[item.index] = self._rejected_preview(item.fallback, started)
                elif item.fallback is not None:
                    CONTEXT_FALLBACKS.labels(item.fallback).inc()
                    rerun.append(item)
                wanted.append(item.fallback is None)
            segments = self.decoder.segments(decoded, wanted)
            for item, keep, item_segments in zip(group, wanted, segments, strict=True):
                if keep:
                    results[item.index] = self._summarise(item, item_segments, started, len(group), frames)
        return rerun

    def _full_pass(self, items: list[_Pending], results: list[WindowTranscript | None], started: float) -> None:
        """Decode with the full 30 s context; a decode failing Whisper's rule is re-decoded with temperature."""
        retry = len(self.guards.temperatures) > 1
        for frames, group in self._groups(items, FULL_CONTEXT):
            decoded = self.decoder.decode(
                [g.samples for g in group], frames, [g.prompt for g in group], self.language or "en"
            )
            wanted = [
                not (retry and self.guards.needs_fallback(g.avg_logprob, get_compression_ratio(g.text)))
                for g in decoded.greedy
            ]
            segments = self.decoder.segments(decoded, wanted)
            for item, keep, item_segments in zip(group, wanted, segments, strict=True):
                if keep:
                    result = self._summarise(item, item_segments, started, len(group), frames)
                elif item.job.priority == Priority.INTERIM:
                    PREVIEWS_REJECTED.labels("temperature").inc()
                    result = self._rejected_preview("temperature", started)
                else:
                    result = self._decode_single(item.job, item.samples, started, fallback=item.fallback)
                results[item.index] = result

    # -- the sequential path ----------------------------------------------------------------------

    def _decode_single(
        self, job: WindowJob, samples: npt.NDArray[np.float32], started: float, fallback: str | None = None
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
            initial_prompt=job.prompt.strip() or None,
            word_timestamps=True,
            vad_filter=False,  # VAD already gated this window; decode all of it, as the batched path does
        )
        segments = [  # consume the lazy generator: nothing runs until it is iterated
            Segment(
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
        return self._result(job, segments, info.language, started, 1, N_FRAMES, fallback)

    # -- results ----------------------------------------------------------------------------------

    def _silence(self, started: float) -> WindowTranscript:
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

    def _rejected_preview(self, reason: str, started: float) -> WindowTranscript:
        return WindowTranscript(
            words=(),
            text="",
            avg_logprob=0.0,
            no_speech_prob=0.0,
            compression_ratio=0.0,
            model=self.model_name,
            precision=self.precision,
            language=self.language or "en",
            context_fallback=reason,
            rejected_preview=True,
            inference_seconds=time.perf_counter() - started,
        )

    def _summarise(
        self, item: _Pending, segments: list[Segment], started: float, batch_size: int, frames: int
    ) -> WindowTranscript:
        return self._result(item.job, segments, self.language or "en", started, batch_size, frames, item.fallback)

    def _result(
        self,
        job: WindowJob,
        segments: list[Segment],
        language: str,
        started: float,
        batch_size: int,
        frames: int,
        fallback: str | None,
    ) -> WindowTranscript:
        """Keep the segments that pass the no-speech guard; aggregate the figures over all decoded ones."""
        kept = [s for s in segments if not self.guards.is_no_speech(s.no_speech_prob, s.avg_logprob)]
        weights = [max(s.end - s.start, 1e-3) for s in segments]
        avg_logprob = float(np.average([s.avg_logprob for s in segments], weights=weights)) if segments else 0.0
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
            inference_seconds=time.perf_counter() - started,
            context_fallback=fallback,
            extra={"batch_size": float(batch_size), "segments": float(len(kept)), "encoder_frames": float(frames)},
        )


def _mono_float32(samples: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    array = np.asarray(samples, dtype=np.float32)
    return array.mean(axis=1).astype(np.float32) if array.ndim == 2 else array.reshape(-1)
