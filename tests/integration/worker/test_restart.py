"""A worker stopped mid-stream and started again continues the stream from its table state."""

from __future__ import annotations

import time
from pathlib import Path

from stream_app.audio.files import read_native_audio
from stream_app.clients.chunking import prepare_audio
from stream_app.config import Settings
from stream_app.testing.service import ServiceHarness
from stream_app.testing.wer import word_error_rate


def test_restart_mid_stream_resumes_from_state(settings: Settings, jfk_path: Path, jfk_reference: str) -> None:
    frames, fmt = prepare_audio(read_native_audio(jfk_path), "s16le16k", "s16le")
    half = frames.shape[0] // 2
    # the first half of jfk (5.5 s) holds pauses: words are final and decodes stored before the worker stops
    with ServiceHarness(settings) as harness:
        harness.start("r1")
        with harness.publisher() as publisher:
            first = publisher.publish_frames("resume", frames[:half], fmt, chunk_ms=200, end_of_stream=False)
            # let the worker take the first half in before it stops
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "stream_app_windows_total" not in harness.replicas["r1"].metrics():
                time.sleep(0.5)
            time.sleep(2.0)
            harness.stop("r1")
            harness.start("r1")
            publisher.publish_frames(
                "resume",
                frames[half:],
                fmt,
                chunk_ms=200,
                start_seq=first.chunks,
                start_offset=half,
                end_of_stream=True,
            )
        collected = harness.collect(["resume"], timeout=120)["resume"]
    assert collected.transcript.complete
    assert word_error_rate(jfk_reference, collected.transcript.text) <= 0.10, collected.transcript.text
    finals = collected.finals()
    assert [s.index for s in finals] == list(range(len(finals)))
