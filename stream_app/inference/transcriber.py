"""Whisper on windows of many streams in batched CTranslate2 calls, every word of them decoded.

One loaded ``faster_whisper.WhisperModel`` is shared by the pool threads of its replica. A window's
speech comes from the job (a live stream's own VAD, computed once per sample; `stream-app batch`'s
cutter) or from Silero VAD run here (a job without it); a window without speech never reaches the
decoder.

The batched path (``transcribe_windows``):

1. **Fitted pass.** The encoder input is sized to each window (``EncoderContext``); windows are grouped
   by that length and their prompt length, one CTranslate2 call per group. A decode that trips a guard
   (`stream_app.inference.guards`) is re-run with the full 30 s context if every word of it will be
   final (cuts, files); a tick's or preview's is dropped (the next one decodes the window again).
2. **Full pass.** A full-context decode that fails Whisper's own rule is re-decoded at the next
   temperature through faster-whisper's sequential path (seeded, so a replay makes the same words).
3. **Rounds.** A decode that stops while speech remains after its last word continues from where it
   stopped (Whisper's seek, or its last word), with the text so far as the prompt: a second round of
   the same batched call for every window that needs one, as faster-whisper's own loop would.
4. **Holes.** Speech a decode passed over between two of its words (a lone "Right." between two
   sentences of a long window) is decoded on its own, all such holes in one more batched call.
5. **Left over.** Speech of a cut or a file that still has no words after all that is tried once more
   with the full context (``stopped_early``), and what remains is reported in ``undecoded``: the
   merger makes it a gap, never silence.

Each window's result depends on its own audio, prompt and prefix only, never on what shared its batch.
Word times are shifted by ``job.start`` into stream time.
"""

from __future__ import annotations

import math
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import ctranslate2
import numpy as np
import numpy.typing as npt
from faster_whisper.transcribe import get_compression_ratio, merge_punctuations
from faster_whisper.vad import VadOptions, get_speech_timestamps

from stream_app.inference.alignment import APPEND_PUNCTUATIONS, PREPEND_PUNCTUATIONS, AligningWhisperModel
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
    HOLES_FILLED,
    PREVIEWS_REJECTED,
    REPEATS_HEARD,
    DecodeFigures,
    DecodeGuards,
    collapsed_words,
    context_fallback_reason,
    said_again,
)
from stream_app.inference.types import DecodeKind, WindowJob, WindowTranscript, Word
from stream_app.streaming.text import normalise

__all__ = ["MAX_WINDOW_SECONDS", "SAMPLE_RATE", "DecodeGuards", "EncoderContext", "WhisperTranscriber"]

SAMPLE_RATE = 16000
MAX_WINDOW_SECONDS = 30.0  # Whisper's receptive field; longer jobs take the sequential path
MAX_ROUNDS = 3  # decodes of one window, counting the first: a stop with speech after it continues
PROMPT_TOKENS = 64  # previous text given to a continuation round
LOWEST_LOGPROB = -100.0  # the floor of a window's avg_logprob (a decode's own are far above: -1 is already unsure)
RESIDUAL_SPEECH = 0.3  # seconds of speech after the last word that mean the decode stopped early
WORD_REACH = 0.3  # seconds around a word that its speech may extend (alignment is not exact)
TICK_TAIL = 1.0  # a tick's last second may hold a word still being said: not "left over"
MIN_UNDECODED = 0.25  # seconds: shorter speech without words is a click or a breath, not a gap
HOLE_MARGIN = 0.3  # seconds of audio around speech a decode skipped, when it is decoded on its own
REPEAT_REACH = 1.0  # seconds: a retry's word this near a window's word of the same text is that word, timed later
_SAMPLING = threading.Lock()  # CTranslate2's random seed is global: sampled fallbacks run one at a time


@dataclass
class _Item:
    """A window on its way through the batched path."""

    index: int
    job: WindowJob
    samples: npt.NDArray[np.float32]
    speech: list[tuple[float, float]]  # voiced spans, seconds of the window
    prefix_end: float = 0.0  # where the forced prefix's words end, seconds of the window
    prefix: list[int] = field(default_factory=list)
    prompt: list[int] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)  # new words so far, window time
    segments: list[Segment] = field(default_factory=list)
    resume: float | None = None
    fallback: str | None = None
    full_done: bool = False
    rounds: int = 0
    frames: int = 0
    batch: int = 1  # windows in the CTranslate2 call its words came from

    @property
    def voiced_seconds(self) -> float:
        return sum(b - a for a, b in self.speech)

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE


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
            vad: Gate windows without a speech map of their own with Silero VAD.
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
        self._model = AligningWhisperModel(
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

    def speech(self, samples: npt.NDArray[np.float32]) -> list[tuple[float, float]]:
        """Voiced spans (seconds) Silero VAD finds in the samples (all of them with VAD off)."""
        if not self.vad:
            return [(0.0, len(samples) / SAMPLE_RATE)] if len(samples) else []
        spans = get_speech_timestamps(samples, self.vad_options, sampling_rate=SAMPLE_RATE)
        return [(int(s["start"]) / SAMPLE_RATE, int(s["end"]) / SAMPLE_RATE) for s in spans]

    def voiced_seconds(self, samples: npt.NDArray[np.float32]) -> float:
        """Seconds of speech Silero VAD finds in the samples (all of them with VAD off)."""
        return sum(b - a for a, b in self.speech(samples))

    def has_speech(self, samples: npt.NDArray[np.float32]) -> bool:
        """Whether Silero VAD finds any speech in the samples (always True with VAD off)."""
        return self.voiced_seconds(samples) > 0

    def transcribe_window(self, job: WindowJob) -> WindowTranscript:
        """Transcribe one window through faster-whisper's sequential path (30 s context, temperature fallback)."""
        started = time.perf_counter()
        samples = _mono_float32(job.samples)
        speech = self._speech_of(job, samples)
        if not speech:
            return self._silence(started)
        return self._sequential(job, samples, speech, started)

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
        batched: list[_Item] = []
        for i, job in enumerate(jobs):
            samples = _mono_float32(job.samples)
            speech = self._speech_of(job, samples)
            if not speech:
                results[i] = self._silence(started)
            elif len(samples) > MAX_WINDOW_SECONDS * SAMPLE_RATE or self.language is None:
                results[i] = self._sequential(job, samples, speech, started)
            else:
                batched.append(_Item(i, job, samples, speech, job.prefix_end))
        if batched:
            tokenizer = self.decoder.tokenizer(self.language or "en")
            for item in batched:
                item.prompt = self.decoder.prompt(tokenizer, item.job.prompt)
                item.prefix = self.decoder.prefix(tokenizer, item.job.prefix)
            first = self._first_pass(batched, context, results, started) if context.fitted else batched
            self._full_pass([i for i in first if results[i.index] is None], results, started)
            live = [i for i in batched if results[i.index] is None]
            self._rounds(live, context, results, started)
            self._fill_holes([i for i in live if results[i.index] is None])
            self._left_over([i for i in live if results[i.index] is None], results, started)
            for item in live:
                if results[item.index] is None:
                    results[item.index] = self._result(item, started)
        return [r for r in results if r is not None]

    # -- passes -----------------------------------------------------------------------------------

    def _groups(self, items: list[_Item], context: EncoderContext) -> list[tuple[int, list[_Item]]]:
        """Group windows by (encoder frames, prompt length): each group is one CTranslate2 call."""
        keys = [(context.frames_for(content_frames(len(item.samples))), len(item.prompt)) for item in items]
        return [(key[0], [items[p] for p in positions]) for key, positions in group_by(keys).items()]

    def _decode(
        self, items: list[_Item], context: EncoderContext, *, budgeted: bool, keep_repeats: bool = False
    ) -> None:
        """Decode ``items`` (grouped), set their words, resume points and the guard each failed (``fallback``).

        With ``keep_repeats``, a tick's or preview's decode whose only fault is words it repeats is
        aligned anyway and kept when every copy lies on speech of its own (`said_again`): said twice,
        not looping. Their words become final only when two decodes agree; a cut's or a file's are
        final at once, so theirs are still re-run with the full context.
        """
        language = self.language or "en"
        for frames, group in self._groups(items, context):
            budgets = [self.guards.token_budget(frames / FRAMES_PER_SECOND) for _ in group] if budgeted else None
            decoded = self.decoder.decode(
                [g.samples for g in group],
                frames,
                [g.prompt for g in group],
                language,
                budgets,
                [g.prefix for g in group],
            )
            wanted = []
            repeats: list[set[tuple[str, ...]]] = []
            for item, greedy in zip(group, decoded.greedy, strict=True):
                item.frames = frames
                item.batch = len(group)
                voiced = sum(b - max(a, item.prefix_end) for a, b in item.speech if b > item.prefix_end)
                figures = DecodeFigures(
                    greedy.text,
                    greedy.avg_logprob,
                    greedy.no_speech_prob,
                    voiced,
                    greedy.truncated,
                    before=item.job.prefix if item.prefix else "",
                )
                item.fallback = context_fallback_reason(figures, self.guards, coverage=False) if budgeted else None
                if not budgeted and self.guards.needs_fallback(greedy.avg_logprob, get_compression_ratio(greedy.text)):
                    item.fallback = "temperature"
                item.resume = greedy.resume
                grams = (
                    self.guards.loops_in(figures)
                    if keep_repeats
                    and not item.job.kind.commits_all
                    and item.fallback == "repetition"
                    and context_fallback_reason(figures, self.guards, coverage=False, heard_repeat=True) is None
                    else set()
                )
                repeats.append(grams)
                wanted.append(item.fallback is None or bool(grams))
            for item, grams, keep, segments in zip(
                group, repeats, wanted, self.decoder.segments(decoded, wanted), strict=True
            ):
                if not keep:
                    continue
                if grams:
                    timed = [(w.text, w.start, w.end) for w in _words(segments)]
                    if not said_again(grams, timed, item.speech, self.guards):
                        continue  # a loop: the fallback stays "repetition"
                    REPEATS_HEARD.inc()
                    item.fallback = None
                item.segments = self._kept(segments)
                item.words = _audible(_words(item.segments))
                item.rounds = 1

    def _first_pass(
        self, items: list[_Item], context: EncoderContext, results: list[WindowTranscript | None], started: float
    ) -> list[_Item]:
        """Decode with fitted context; return the windows to re-run with the full context."""
        self._decode(items, context, budgeted=True, keep_repeats=True)
        rerun = []
        for item in items:
            if item.fallback is None:
                continue
            if not item.job.kind.commits_all:
                # a tick or preview is best effort: the next one decodes the window again
                PREVIEWS_REJECTED.labels(item.fallback).inc()
                results[item.index] = self._rejected(item.fallback, started)
            else:
                CONTEXT_FALLBACKS.labels(item.fallback).inc()
                rerun.append(item)
        return rerun

    def _full_pass(self, items: list[_Item], results: list[WindowTranscript | None], started: float) -> None:
        """Decode with the full 30 s context; a decode failing Whisper's rule goes to the sequential path."""
        if not items:
            return
        retry = len(self.guards.temperatures) > 1
        reasons = [item.fallback for item in items]  # why the fitted pass sent each here (None: not fitted)
        for item in items:
            item.full_done = True
        self._decode(items, FULL_CONTEXT, budgeted=False)
        for item, reason in zip(items, reasons, strict=True):
            if item.fallback is None or not retry:
                item.fallback = reason or item.fallback  # the result names the first guard that failed
                continue
            if not item.job.kind.commits_all:
                PREVIEWS_REJECTED.labels("temperature").inc()
                results[item.index] = self._rejected("temperature", started)
            else:
                results[item.index] = self._sequential(item.job, item.samples, item.speech, started, item.fallback)

    def _rounds(
        self, items: list[_Item], context: EncoderContext, results: list[WindowTranscript | None], started: float
    ) -> None:
        """Continue every decode that stopped with speech after its last word, all such windows batched."""
        for _ in range(MAX_ROUNDS - 1):
            todo = []
            for item in items:
                if results[item.index] is not None:
                    continue
                seek = self._seek(item)
                if seek is not None:
                    todo.append((item, seek))
            if not todo:
                return
            tokenizer = self.decoder.tokenizer(self.language or "en")
            parts = []
            for item, seek in todo:
                known = " ".join([item.job.prefix, *(w.text for w in item.words)])
                parts.append(
                    _Item(
                        item.index,
                        item.job,
                        item.samples[round(seek * SAMPLE_RATE) :],
                        [(max(0.0, a - seek), b - seek) for a, b in item.speech if b > seek],
                        prompt=self.decoder.prompt(tokenizer, known, PROMPT_TOKENS),
                    )
                )
            self._decode(parts, context, budgeted=True, keep_repeats=True)
            for (item, seek), part in zip(todo, parts, strict=True):
                item.rounds += 1
                fresh = [w for w in part.words if w.end + seek > _last_end(item) + 0.05]
                if part.fallback is not None or not fresh:
                    item.resume = None  # nothing more to gain here: the left-over check decides
                    item.rounds = MAX_ROUNDS
                    continue
                item.words.extend(_shift(w, seek) for w in fresh)
                item.segments.extend(_shift_segment(s, seek) for s in part.segments)
                item.resume = None if part.resume is None else part.resume + seek

    def _seek(self, item: _Item) -> float | None:
        """Where to continue a decode that left speech after its last word (None: it heard the window out)."""
        if item.rounds >= MAX_ROUNDS or item.rounds == 0:
            return None
        last = _last_end(item)
        if self._residual(item, last) < RESIDUAL_SPEECH:
            return None
        seek = max(last, item.resume or 0.0)
        if seek >= item.duration - 0.2:
            return None
        return seek

    def _residual(self, item: _Item, last: float) -> float:
        """Seconds of speech after ``last`` (a tick's still-moving end not counted)."""
        until = item.duration if item.job.kind.commits_all else item.duration - TICK_TAIL
        return sum(max(0.0, min(b, until) - max(a, last + WORD_REACH)) for a, b in item.speech)

    def _fill_holes(self, items: list[_Item]) -> None:
        """Decode again, on its own, speech that a decode skipped between two of its words.

        Whisper reading a long window may pass over a short utterance between sentences ("Right.",
        "Yes.") that it hears when the audio starts there. Each such hole (`_holes`) is decoded from
        just before it to just after it, all holes batched in one more call, and the words heard inside
        it join the window's words.
        """
        parts: list[tuple[_Item, float, _Item]] = []
        tokenizer = self.decoder.tokenizer(self.language or "en")
        for item in items:
            for start, stop in self._holes(item):
                first = max(0.0, start - HOLE_MARGIN)
                samples = item.samples[round(first * SAMPLE_RATE) : round((stop + HOLE_MARGIN) * SAMPLE_RATE)]
                speech = [(max(0.0, a - first), min(b, stop + HOLE_MARGIN) - first) for a, b in item.speech]
                part = _Item(
                    item.index,
                    item.job,
                    samples,
                    [(a, b) for a, b in speech if b > a],
                    prompt=self.decoder.prompt(tokenizer, ""),  # with the text before, it repeats that text
                )
                parts.append((item, first, part))
        if not parts:
            return
        # the full 30 s context: a second of audio in a fitted one loops ("Right. Right. Right.")
        self._decode([part for _, _, part in parts], FULL_CONTEXT, budgeted=True)
        for item, first, part in parts:
            if part.fallback is not None:
                continue
            found = [_shift(w, first) for w in part.words]
            inside = [w for w in found if not any(w.start < o.end and o.start < w.end for o in item.words)]
            if inside:
                HOLES_FILLED.inc()
                item.words = sorted([*item.words, *inside], key=lambda w: w.start)

    def _holes(self, item: _Item) -> list[tuple[float, float]]:
        """Voiced spans after the final words that no word reaches, with a word of the decode after them.

        Not for previews: they make nothing final, and the next tick fills the hole for good.
        """
        if not item.words or item.job.kind is DecodeKind.PREVIEW:
            return []
        until = item.duration if item.job.kind.commits_all else item.duration - TICK_TAIL
        return self._uncovered(item, until=min(until, item.words[-1].start))

    def _left_over(self, items: list[_Item], results: list[WindowTranscript | None], started: float) -> None:
        """Try speech a cut or file left without words once more, with the full context, then make it a gap."""
        again = [i for i in items if i.job.kind.commits_all and not i.full_done and self._uncovered(i)]
        if not again:
            return
        CONTEXT_FALLBACKS.labels("stopped_early").inc(len(again))
        trial = [_Item(i.index, i.job, i.samples, i.speech, i.prefix_end, i.prefix, i.prompt) for i in again]
        self._decode(trial, FULL_CONTEXT, budgeted=False)
        for item, retry in zip(again, trial, strict=True):
            item.full_done = True
            if retry.fallback is not None:
                continue
            # only where the window has no words: the retry may miss a stretch the window heard
            # (the whole word inside such speech, and not a neighbour's text heard again a little later)
            spans = self._uncovered(item)
            found = [
                w
                for w in retry.words
                if any(a <= w.start and w.end <= b for a, b in spans)
                and not any(
                    normalise(o.text) == normalise(w.text) and abs(o.start - w.start) < REPEAT_REACH for o in item.words
                )
            ]
            if found:
                item.words = sorted([*item.words, *found], key=lambda w: w.start)
                kept = [s for s in retry.segments if any(s.start < w.end and w.start < s.end for w in found)]
                item.segments = [*item.segments, *kept]

    def _uncovered(self, item: _Item, until: float | None = None) -> list[tuple[float, float]]:
        """Voiced spans after the prefix (and before ``until``) that no word reaches, `MIN_UNDECODED` each."""
        covered = [(w.start - WORD_REACH, w.end + WORD_REACH) for w in item.words]
        out = []
        for a, b in item.speech:
            a, b = max(a, item.prefix_end), b if until is None else min(b, until)
            for start, stop in _subtract((a, b), covered):
                if stop - start >= MIN_UNDECODED:
                    out.append((start, stop))
        return out

    # -- the sequential path ----------------------------------------------------------------------

    def _sequential(
        self,
        job: WindowJob,
        samples: npt.NDArray[np.float32],
        speech: list[tuple[float, float]],
        started: float,
        fallback: str | None = None,
    ) -> WindowTranscript:
        """faster-whisper's own loop (30 s windows, seek, temperature fallback), seeded by the audio."""
        with _SAMPLING:
            ctranslate2.set_random_seed(zlib.crc32(samples.tobytes()) & 0x7FFFFFFF)
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
                prefix=job.prefix.strip() or None,
                word_timestamps=True,
                vad_filter=False,  # the window's speech is known; decode all of it, as the batched path does
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
        if job.prefix.strip():
            segments = _drop_words(segments, prefix_word_count(self.decoder, job.prefix))
        item = _Item(-1, job, samples, speech, job.prefix_end, segments=self._kept(segments), full_done=True)
        item.words = _audible(_words(item.segments))
        item.fallback = fallback
        item.frames = N_FRAMES
        return self._result(item, started, language=info.language)

    # -- results ----------------------------------------------------------------------------------

    def _speech_of(self, job: WindowJob, samples: npt.NDArray[np.float32]) -> list[tuple[float, float]]:
        if job.speech is not None:
            return [(float(a), float(b)) for a, b in job.speech]
        return self.speech(samples)

    def _kept(self, segments: list[Segment]) -> list[Segment]:
        """Keep the segments that pass Whisper's no-speech rule."""
        return [s for s in segments if not self.guards.is_no_speech(s.no_speech_prob, s.avg_logprob)]

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

    def _rejected(self, reason: str, started: float) -> WindowTranscript:
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

    def _result(self, item: _Item, started: float, language: str | None = None) -> WindowTranscript:
        """Return the window's words in stream time, figures over the segments kept, and speech left without words."""
        job = item.job
        segments = item.segments
        weights = [max(s.end - s.start, 1e-3) for s in segments]
        avg_logprob = float(np.average([s.avg_logprob for s in segments], weights=weights)) if segments else 0.0
        # a segment carries only finite figures (JSON has no NaN): one the model gave otherwise is made the least sure
        avg_logprob = max(LOWEST_LOGPROB, avg_logprob) if not math.isnan(avg_logprob) else LOWEST_LOGPROB
        no_speech = _probability(min((s.no_speech_prob for s in segments), default=0.0), 1.0)
        words = tuple(
            replace(
                w,
                start=round(job.start + w.start, 3),
                end=round(job.start + w.end, 3),
                probability=_probability(w.probability, 0.0),
            )
            for w in item.words
        )
        text = " ".join(w.text for w in words)
        undecoded: tuple[tuple[float, float], ...] = ()
        if job.kind.commits_all:
            undecoded = tuple((round(job.start + a, 3), round(job.start + b, 3)) for a, b in self._uncovered(item))
        return WindowTranscript(
            words=words,
            text=text,
            avg_logprob=avg_logprob,
            no_speech_prob=no_speech,
            compression_ratio=get_compression_ratio(text) if text else 0.0,
            model=self.model_name,
            precision=self.precision,
            language=language or self.language or "en",
            inference_seconds=time.perf_counter() - started,
            context_fallback=item.fallback,
            undecoded=undecoded,
            extra={
                "segments": float(len(segments)),
                "encoder_frames": float(item.frames),
                "rounds": float(item.rounds),
                "batch_size": float(item.batch),
            },
        )


def prefix_word_count(decoder: BatchDecoder, text: str) -> int:
    """How many words alignment makes of ``text`` (punctuation merged into its word, as faster-whisper does)."""
    tokenizer = decoder.tokenizer("en")
    tokens = tokenizer.encode(" " + text.strip())
    words, word_tokens = tokenizer.split_to_word_tokens([*tokens, tokenizer.eot])
    entries: list[dict[str, Any]] = [
        {"word": w, "tokens": t} for w, t in zip(words[:-1], word_tokens[:-1], strict=True)
    ]
    merge_punctuations(entries, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)
    return len([e for e in entries if e["word"]])


def _audible(words: list[Word]) -> list[Word]:
    """Return the words less those alignment piled up where it found no audio for them (`collapsed_words`)."""
    collapsed = set(collapsed_words([w.start for w in words]))
    return [w for i, w in enumerate(words) if i not in collapsed]


def _words(segments: list[Segment]) -> list[Word]:
    return [
        Word(float(w["start"]), float(w["end"]), str(w["word"]).strip(), float(w["probability"]))
        for s in segments
        for w in s.words
        if str(w["word"]).strip()
    ]


def _drop_words(segments: list[Segment], count: int) -> list[Segment]:
    """Drop the first ``count`` words (the forced prefix) from segments that repeat it."""
    out = []
    for segment in segments:
        words = [w for w in segment.words if str(w["word"]).strip()]
        if count >= len(words):
            count -= len(words)
            continue
        kept = words[count:]
        count = 0
        out.append(replace(segment, words=kept, text="".join(str(w["word"]) for w in kept)))
    return out


def _last_end(item: _Item) -> float:
    return item.words[-1].end if item.words else item.prefix_end


def _shift(word: Word, by: float) -> Word:
    return replace(word, start=round(word.start + by, 3), end=round(word.end + by, 3))


def _shift_segment(segment: Segment, by: float) -> Segment:
    return replace(segment, start=segment.start + by, end=segment.end + by)


def _subtract(span: tuple[float, float], covered: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """``span`` minus the union of ``covered`` intervals."""
    pieces = [span]
    for a, b in sorted(covered):
        nxt = []
        for start, stop in pieces:
            if b <= start or a >= stop:
                nxt.append((start, stop))
                continue
            if a > start:
                nxt.append((start, a))
            if b < stop:
                nxt.append((b, stop))
        pieces = nxt
    return [(a, b) for a, b in pieces if b > a]


def _mono_float32(samples: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    array = np.asarray(samples, dtype=np.float32)
    return array.mean(axis=1).astype(np.float32) if array.ndim == 2 else array.reshape(-1)


def _probability(value: float, otherwise: float) -> float:
    """Return ``value`` within [0, 1], or ``otherwise`` where the model gave no number (NaN)."""
    return otherwise if math.isnan(value) else min(1.0, max(0.0, value))
