"""A replica killed (-9) mid-stream: another replica of the group resumes the stream from the changelog."""

from __future__ import annotations

import re
import time
from pathlib import Path

from stream_app.audio.files import read_native_audio
from stream_app.clients.chunking import prepare_audio
from stream_app.config import Settings
from stream_app.testing.service import ServiceHarness
from stream_app.testing.wer import word_error_rate

ACCEPTED = re.compile(r'^stream_app_chunks_total\{outcome="accepted"\} (\S+)$', re.MULTILINE)


def accepted(metrics: str) -> float:
    match = ACCEPTED.search(metrics)
    return float(match.group(1)) if match else 0.0


def test_killed_replica_hands_the_stream_over(settings: Settings, jfk_path: Path, jfk_reference: str) -> None:
    frames, fmt = prepare_audio(read_native_audio(jfk_path), "s16le16k", "s16le")
    half = frames.shape[0] // 2
    with ServiceHarness(settings) as harness:
        harness.start("a", wait=0)
        harness.start("b", wait=0)
        harness.wait_ready("a")
        harness.wait_ready("b")
        with harness.publisher() as publisher:
            first = publisher.publish_frames("failover", frames[:half], fmt, chunk_ms=200, end_of_stream=False)
            owner = None
            deadline = time.monotonic() + 60
            while owner is None and time.monotonic() < deadline:
                counts = {name: accepted(r.metrics()) for name, r in harness.replicas.items()}
                owner = next((name for name, count in counts.items() if count >= first.chunks), None)
                time.sleep(0.5)
            assert owner is not None, counts
            harness.stop(owner, kill=True)
            survivor = "b" if owner == "a" else "a"
            publisher.publish_frames(
                "failover", frames[half:], fmt, chunk_ms=200, start_seq=first.chunks, start_offset=half
            )
        collected = harness.collect(["failover"], timeout=180)["failover"]
        assert harness.replicas[survivor].running
        assert accepted(harness.replicas[survivor].metrics()) > 0, harness.log_tail(survivor)
    assert collected.transcript.complete
    assert word_error_rate(jfk_reference, collected.transcript.text) <= 0.10, collected.transcript.text
    finals = collected.finals()
    assert [s.index for s in finals] == list(range(len(finals)))
    texts: dict[str, set[str]] = {}
    for segment in collected.segments:
        if segment.is_final:
            texts.setdefault(segment.segment_id, set()).add(segment.text)
    assert all(len(t) == 1 for t in texts.values()), texts  # a replayed id never carries different text
