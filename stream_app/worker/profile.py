"""The live rule of the configured profile, as the plain values `stream_app.streaming` takes.

`stream_app.streaming` holds no configuration and no I/O; this is the one place that reads the
settings for it (the worker, benchmarks and tests all build their live rule and merge policy here).
"""

from __future__ import annotations

from stream_app.config import Settings
from stream_app.streaming import LiveConfig, MergePolicy


def live_config_for(settings: Settings) -> LiveConfig:
    """Build the live rule of the configured profile (explicit steps override the profile's)."""
    s = settings.streaming
    return LiveConfig.from_seconds(
        buffer_size=s.buffer_size,
        max_reorder_chunks=s.max_reorder_chunks,
        max_held=s.max_held,
        speech_threshold=s.speech_threshold,
        silence_threshold=s.silence_threshold,
        speech_lead=s.speech_lead,
        speech_tail=s.speech_tail,
        utterance_pause=s.utterance_pause,
        long_pause=s.long_pause,
        min_window=s.min_window,
        max_window=s.max_window,
        min_speech=s.min_speech,
        commit_step=settings.commit_step_seconds,
        commit_lookahead=s.commit_lookahead,
        commit_step_growth=s.commit_step_growth,
        decode_context=s.decode_context,
        preview_context=s.preview_context,
        force_final_words=s.force_final_words,
        preview_step=settings.preview_step_seconds,
        settle_after=s.settle_after,
    )


def merge_policy_for(settings: Settings) -> MergePolicy:
    """Return the merger's commit margin and settling rule of the configured live rule."""
    return MergePolicy.of(live_config_for(settings))
