"""Benchmark windows are the live path's windows, and merging them gives the stream's text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stream_app.bench.live_windows import cut_windows, live_config, merge_policy, merged_text
from stream_app.bench.replicas import _layout
from stream_app.config import Settings
from stream_app.inference.types import WindowTranscript, Word
from stream_app.streaming import Window
from stream_app.testing.corpus import SAMPLE_RATE, CorpusItem


def _item(tmp_path: Path, seconds: float) -> CorpusItem:
    rng = np.random.default_rng(3)
    audio = rng.normal(0.0, 0.1, round(seconds * SAMPLE_RATE)).astype(np.float32)
    path = tmp_path / "speechlike.wav"
    sf.write(path, audio, SAMPLE_RATE, subtype="PCM_16")
    return CorpusItem(path, "one two three", seconds, "none")


def test_windows_follow_the_live_rule_and_cover_the_stream(tmp_path: Path, settings: Settings) -> None:
    config = live_config(settings, 10.0)
    assert config.window == 10 * SAMPLE_RATE and config.overlap == round(settings.overlap_seconds * SAMPLE_RATE)
    [stream] = cut_windows([_item(tmp_path, 34.0)], config, prefix="t")
    starts = [w.start_sample for w in stream.windows]
    assert stream.stream_id == "t-0" and starts == sorted(starts) and starts[0] == 0
    assert max(w.end_sample for w in stream.windows) == 34 * SAMPLE_RATE
    assert all(len(w.samples) <= config.window for w in stream.windows)
    assert not any(w.is_interim for w in stream.windows) and stream.windows[-1].is_last
    jobs = stream.jobs()
    assert [j.window_index for j in jobs] == [w.index for w in stream.windows if not w.is_empty]


def test_merged_text_joins_the_final_segments(tmp_path: Path, settings: Settings) -> None:
    [stream] = cut_windows([_item(tmp_path, 12.0)], live_config(settings, 10.0), prefix="t")

    def transcript(window: Window) -> WindowTranscript:
        word = Word(window.start + 0.2, window.start + 0.6, f"w{window.index}", 0.9)
        return WindowTranscript((word,), word.text, -0.2, 0.01, 1.0, "fake", "int8")

    text = merged_text(stream, transcript, merge_policy(settings))
    assert text.split() == [f"w{w.index}" for w in stream.windows if not w.is_empty]


def test_replica_layouts_are_replicas_by_threads() -> None:
    assert _layout("2x1") == (2, 1) and _layout(" 1x2 ") == (1, 2)
    with pytest.raises(SystemExit, match="replicas x threads"):
        _layout("2")
