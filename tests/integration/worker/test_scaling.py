"""Scaling out: two worker processes in one consumer group split the partitions, and every stream completes."""

from __future__ import annotations

import re
from pathlib import Path

from stream_app.config import Settings
from stream_app.testing.service import running_service
from stream_app.testing.wer import word_error_rate

STREAMS = [f"scale-{i}" for i in range(6)]


def accepted_chunks(metrics_text: str) -> float:
    """Sum of ``stream_app_chunks_total{outcome="accepted"}`` in a Prometheus exposition."""
    pattern = re.compile(r'^stream_app_chunks_total\{[^}]*outcome="accepted"[^}]*\}\s+([0-9.e+]+)$', re.MULTILINE)
    return sum(float(value) for value in pattern.findall(metrics_text))


def test_two_replicas_share_partitions_and_every_stream_completes(
    settings: Settings, jfk_path: Path, jfk_reference: str
) -> None:
    with running_service(settings, replicas=2, partitions=4) as harness:
        # running_service waited for both /readyz, which needs partitions assigned to that replica
        landed: set[int] = set()
        with harness.publisher() as publisher:
            for stream_id in STREAMS:
                landed |= publisher.publish_file(jfk_path, stream_id, chunk_ms=500).partitions
        # the premise of the test: the streams cover every partition, so each replica has work
        assert landed == set(range(4)), landed
        collected = harness.collect(STREAMS, timeout=150)
        chunks = {name: accepted_chunks(replica.metrics()) for name, replica in harness.replicas.items()}
        logs = {name: harness.log_tail(name, 15) for name in harness.replicas}

    assert all(count > 0 for count in chunks.values()), (chunks, logs)
    for stream_id in STREAMS:
        transcript = collected[stream_id].transcript
        assert transcript.complete, (stream_id, logs)
        assert word_error_rate(jfk_reference, transcript.text) <= 0.10, (stream_id, transcript.text)
