"""The streaming rules of the configured profile, as the plain values `stream_app.streaming` takes.

`stream_app.streaming` holds no configuration and no I/O; this is the one place that reads the
settings for it (the worker, benchmarks and tests all build their windowing and merge policy here).
"""

from __future__ import annotations

from stream_app.config import Settings
from stream_app.streaming import MergePolicy, WindowingConfig


def windowing_for(settings: Settings) -> WindowingConfig:
    """Build the window rule of the configured profile (explicit durations override the profile's).

    ``streaming.pause_search`` is a share of the window, so one value suits every profile.
    """
    window = settings.window_seconds
    streaming = settings.streaming
    return WindowingConfig.from_seconds(
        window,
        settings.overlap_seconds,
        settings.interim_step_seconds,
        buffer_size=streaming.buffer_size,
        max_reorder_chunks=streaming.max_reorder_chunks,
        pause_search=streaming.pause_search * window,
        min_pause=streaming.min_pause,
        max_held=streaming.max_held,
        left_context=streaming.left_context,
        utterance_pause=streaming.utterance_pause,
        interim_min=streaming.preview_min,
    )


def merge_policy_for(settings: Settings) -> MergePolicy:
    """Read the merger's guard thresholds from the configuration."""
    streaming = settings.streaming
    return MergePolicy(
        no_speech_threshold=streaming.no_speech_threshold,
        log_prob_threshold=streaming.log_prob_threshold,
        compression_ratio_threshold=streaming.compression_ratio_threshold,
        interim_commits=streaming.interim_commits,
        commit_lookahead=streaming.commit_lookahead,
        commit_min_probability=streaming.commit_min_probability,
        prompt_chars=streaming.prompt_chars,
    )
