"""What a listener sees on the real broker: words as previews first, finals replacing them, no loops."""

from __future__ import annotations

import re
from pathlib import Path

import soundfile as sf

from stream_app.audio.files import decode_audio_file
from stream_app.config import Settings
from stream_app.streaming.text import normalise
from stream_app.testing.service import ServiceHarness
from stream_app.testing.wer import word_error_rate


def metric(harness: ServiceHarness, name: str) -> float:
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+([0-9.e+-]+)$", re.M)
    return sum(float(value) for _, value in pattern.findall(harness.replicas["r1"].metrics()))


def test_a_real_time_stream_shows_previews_before_its_first_final_and_finals_replace_them(
    settings: Settings, jfk_path: Path, jfk_reference: str
) -> None:
    assert settings.preview_step_seconds > 0  # the live profile previews by default
    with ServiceHarness(settings, partitions=1) as harness:
        harness.start("r1")
        with harness.publisher() as publisher:
            publisher.publish_file(jfk_path, "live", chunk_ms=100, realtime=True)
        collected = harness.collect(["live"], timeout=120)["live"]
        assert collected.transcript.complete, harness.log_tail("r1")
        segments = collected.segments  # in the order the topic holds them
        first_final = next(i for i, s in enumerate(segments) if s.is_final)
        assert any(s.words for s in segments[:first_final] if not s.is_final)  # words shown before any final
        finals = {s.segment_id: i for i, s in enumerate(segments) if s.is_final}
        previewed = [s for s in segments if not s.is_final and s.words]
        assert previewed and all(s.segment_id in finals for s in previewed)  # every preview's id became final
        for segment_id in {s.segment_id for s in previewed}:
            positions = [i for i, s in enumerate(segments) if s.segment_id == segment_id and not s.is_final]
            revisions = [segments[i].revision for i in positions]
            assert revisions == sorted(revisions) and max(positions) < finals[segment_id]
        assert word_error_rate(jfk_reference, collected.transcript.text) <= 0.10


def test_a_looping_window_never_reaches_the_topic(settings: Settings, jfk_path: Path, tmp_path: Path) -> None:
    """With no margin after the audio, tiny.en repeats seconds 3-8 of jfk: the guards catch it."""
    clip = tmp_path / "loop.wav"
    sf.write(clip, decode_audio_file(jfk_path)[3 * 16_000 : 8 * 16_000], 16_000, subtype="PCM_16")
    env = {"STREAM_APP_OPTIMIZATION__CONTEXT_MARGIN": "0ms", "STREAM_APP_OPTIMIZATION__CONTEXT_BUCKET": "10ms"}
    with ServiceHarness(settings, partitions=1, env=env) as harness:
        harness.start("r1")
        with harness.publisher() as publisher:
            publisher.publish_file(clip, "loop", chunk_ms=100, realtime=True)
        collected = harness.collect(["loop"], timeout=120)["loop"]
        assert collected.transcript.complete, harness.log_tail("r1")
        for segment in collected.segments:
            words = [normalise(w.text) for w in segment.words]
            phrase = ["ask", "not", "what", "your", "country"]
            starts = [i for i in range(len(words)) if words[i : i + len(phrase)] == phrase]
            assert len(starts) <= 1, segment.text  # said once in the audio, shown at most once
        assert "country" in collected.transcript.text.lower()
        caught = metric(harness, "stream_app_context_fallbacks_total") + metric(
            harness, "stream_app_previews_rejected_total"
        )
        assert caught >= 1, harness.log_tail("r1")  # a loop was decoded, and stopped by the guards
