"""The live rule's plain values: buffer limits, speech thresholds, window sizes, decoding cadence.

Everything is counted in 16 kHz samples, so the rule is exact arithmetic on the stream's timeline. The
worker builds one from the settings (`stream_app.worker.profile`); nothing here reads configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

from stream_app.streaming.exceptions import WindowingConfigError
from stream_app.wire.chunk import SAMPLE_RATE

MAX_WINDOW_SAMPLES = 28 * SAMPLE_RATE  # Whisper hears 30 s; the fitted context's margin needs the rest


def seconds_to_samples(seconds: float) -> int:
    """Convert seconds to a whole number of 16 kHz samples (rounded, so 0.1 s is exactly 1600)."""
    return round(seconds * SAMPLE_RATE)


@dataclass(frozen=True)
class LiveConfig:
    """How one stream's audio becomes decodes (see `stream_app.streaming.planner` for the rule).

    Buffer: ``buffer_cap`` bounds the audio a stream holds, ``max_held`` the out-of-order audio held
    for a hole to fill, ``max_reorder_chunks`` the chunks held, ``max_gap_fill`` the silence one hole
    may insert (0: one ``max_window``).

    Speech: a frame is voiced at or above ``speech_threshold`` (below ``silence_threshold`` once in
    speech: hysteresis). A window opens ``speech_lead`` before its first voiced frame and is cut
    ``speech_tail`` after the speech that precedes a pause of ``utterance_pause`` once it holds
    ``min_window``, after any pause of ``long_pause``, and is re-based when it reaches ``max_window``.

    Decoding: a commit decode of the window so far runs at every ``commit_step`` of stream time
    (0: commit at cuts only; with ``commit_step_growth``, the step grows by one ``commit_step`` for
    every ``commit_step_growth`` the window spans, so a long window's decodes, which cost more each,
    come less often), words two consecutive commit decodes agree on and that end
    ``commit_lookahead`` before the decode's end become final; best-effort previews run on a
    ``preview_step`` grid when the model has time (0: none). A decode re-reads at most
    ``decode_context`` of audio whose words are final (0: the whole window). It decodes that audio
    freely and its words up to the last final word are dropped (`stream_app.streaming.anchoring`);
    ``force_final_words`` forces the decoder through them instead (cheaper, less accurate at
    sentence starts: docs/benchmarks/streaming.md). A preview re-reads at most ``preview_context``
    of them (0: as a commit decode does): previews make no final word, so they can pay for what is
    new only. ``settle_after`` is the merger's rule for a word two commit decodes hear differently
    (`stream_app.streaming.merger.MergePolicy`); it lives here so that a stream's stored rule holds
    everything that decides its finals.
    """

    buffer_cap: int = 300 * SAMPLE_RATE
    max_reorder_chunks: int = 64
    max_held: int = 60 * SAMPLE_RATE
    max_gap_fill: int = 0
    speech_threshold: float = 0.5
    silence_threshold: float = 0.35
    speech_lead: int = seconds_to_samples(0.4)
    speech_tail: int = seconds_to_samples(0.3)
    utterance_pause: int = seconds_to_samples(0.4)
    long_pause: int = seconds_to_samples(2.0)
    min_window: int = seconds_to_samples(12.0)
    max_window: int = seconds_to_samples(20.0)
    min_speech: int = seconds_to_samples(0.1)
    commit_step: int = seconds_to_samples(1.0)
    commit_lookahead: int = seconds_to_samples(0.5)
    preview_step: int = seconds_to_samples(0.25)
    min_decode: int = seconds_to_samples(0.5)
    decode_context: int = seconds_to_samples(2.0)
    force_final_words: bool = True  # the worker's default is free decoding (`StreamingSettings`)
    # fields are only ever appended (stored stream states carry the rule by position: session_state.py)
    preview_context: int = 0
    commit_step_growth: int = 0
    settle_after: int = 2  # the merger's settling rule (`MergePolicy.settle_after`), stored with the rule

    def __post_init__(self) -> None:
        if not 0.0 < self.silence_threshold <= self.speech_threshold < 1.0:
            raise WindowingConfigError(
                f"need 0 < silence threshold ({self.silence_threshold}) <= speech threshold"
                f" ({self.speech_threshold}) < 1"
            )
        if min(self.speech_lead, self.speech_tail, self.commit_lookahead, self.min_decode, self.min_speech) < 0:
            raise WindowingConfigError("speech lead and tail, commit lookahead, minimum decode and speech must be >= 0")
        if self.utterance_pause <= 0 or self.long_pause < self.utterance_pause:
            raise WindowingConfigError("the utterance pause must be positive and no longer than the long pause")
        if self.speech_tail > self.utterance_pause:
            raise WindowingConfigError("the speech tail kept after a window must fit in the utterance pause")
        if not 0 < self.min_window <= self.max_window <= MAX_WINDOW_SAMPLES:
            raise WindowingConfigError(
                f"need 0 < min window <= max window <= {MAX_WINDOW_SAMPLES // SAMPLE_RATE} s"
                f" (got {self.min_window / SAMPLE_RATE} s and {self.max_window / SAMPLE_RATE} s)"
            )
        if self.commit_step < 0 or self.preview_step < 0 or self.commit_step_growth < 0:
            raise WindowingConfigError("commit and preview steps and the commit step growth must be >= 0")
        if self.settle_after < 0:
            raise WindowingConfigError("settle_after must be >= 0")
        if self.decode_context < 0 or self.preview_context < 0:
            raise WindowingConfigError("the decode and preview contexts must be >= 0")
        if min(self.max_reorder_chunks, self.max_gap_fill, self.buffer_cap, self.max_held) < 0:
            raise WindowingConfigError("reorder hold, held audio, gap fill and buffer cap must be >= 0")

    @property
    def preview_reread(self) -> int:
        """The final audio a preview re-reads at most: the shorter of the two contexts that are set (0: all)."""
        limits = [c for c in (self.decode_context, self.preview_context) if c]
        return min(limits, default=0)

    def commit_stride(self, span: int) -> int:
        """Return the commit step of a window spanning ``span`` samples (a whole number of ``commit_step``)."""
        if not self.commit_step_growth:
            return self.commit_step
        return self.commit_step * (1 + span // self.commit_step_growth)

    @property
    def effective_cap(self) -> int:
        """The buffer cap, raised so that a whole window and its lead always fit."""
        return max(self.buffer_cap, self.max_window + self.speech_lead + SAMPLE_RATE)

    @property
    def effective_gap_fill(self) -> int:
        """The most silence one hole may insert (one maximum window unless configured)."""
        return self.max_gap_fill or self.max_window

    @classmethod
    def from_seconds(
        cls,
        *,
        buffer_size: float = 300.0,
        max_reorder_chunks: int = 64,
        max_held: float = 60.0,
        max_gap_fill: float = 0.0,
        speech_threshold: float = 0.5,
        silence_threshold: float = 0.35,
        speech_lead: float = 0.4,
        speech_tail: float = 0.3,
        utterance_pause: float = 0.4,
        long_pause: float = 2.0,
        min_window: float = 12.0,
        max_window: float = 20.0,
        min_speech: float = 0.1,
        commit_step: float = 1.0,
        commit_lookahead: float = 0.5,
        commit_step_growth: float = 0.0,
        preview_step: float = 0.25,
        min_decode: float = 0.5,
        decode_context: float = 2.0,
        preview_context: float = 0.0,
        force_final_words: bool = True,
        settle_after: int = 2,
    ) -> LiveConfig:
        """Build the rule from durations in seconds."""
        return cls(
            buffer_cap=seconds_to_samples(buffer_size),
            max_reorder_chunks=max_reorder_chunks,
            max_held=seconds_to_samples(max_held),
            max_gap_fill=seconds_to_samples(max_gap_fill),
            speech_threshold=speech_threshold,
            silence_threshold=silence_threshold,
            speech_lead=seconds_to_samples(speech_lead),
            speech_tail=seconds_to_samples(speech_tail),
            utterance_pause=seconds_to_samples(utterance_pause),
            long_pause=seconds_to_samples(long_pause),
            min_window=seconds_to_samples(min_window),
            max_window=seconds_to_samples(max_window),
            min_speech=seconds_to_samples(min_speech),
            commit_step=seconds_to_samples(commit_step),
            commit_lookahead=seconds_to_samples(commit_lookahead),
            commit_step_growth=seconds_to_samples(commit_step_growth),
            preview_step=seconds_to_samples(preview_step),
            min_decode=seconds_to_samples(min_decode),
            decode_context=seconds_to_samples(decode_context),
            preview_context=seconds_to_samples(preview_context),
            force_final_words=force_final_words,
            settle_after=settle_after,
        )
