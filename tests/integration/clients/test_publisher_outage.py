"""Recorders ride out a broker outage: chunks wait (bounded), the caller blocks, nothing is lost or doubled.

Runs on a private broker (stopped and started here), never on the shared local stack.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from stream_app.audio.files import read_native_audio
from stream_app.clients.chunking import plan_chunks, prepare_audio
from stream_app.clients.kafka_config import producer_config
from stream_app.clients.publisher import ChunkPublisher, DeliveryFailed, DeliveryLimits, PublishReport
from stream_app.config import Settings
from stream_app.local import ensure_topics
from stream_app.testing.private_stack import PrivateStack
from stream_app.testing.settings_file import write_settings
from stream_app.testing.topic_reader import read_topic
from stream_app.wire.chunk_codec import decode_chunk

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = 30.0  # the broker is stopped this long, then started (it answers ~10 s later)


@pytest.fixture(scope="module")
def private(settings: Settings) -> Iterator[PrivateStack]:
    with PrivateStack(settings) as stack:
        yield stack


@pytest.fixture
def broker_up(private: PrivateStack) -> PrivateStack:
    """The private stack with its broker answering (a test before may have left it stopped)."""
    if not private.stack.kafka.answering():
        private.start_broker()
    return private


def _seqs_by_stream(settings: Settings, topic: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for record in read_topic(settings.kafka, topic, timeout=60):
        chunk = decode_chunk(record.key, record.value, list(record.headers), max_bytes=1 << 20)
        out.setdefault(chunk.stream_id, []).append(chunk.seq)
    return out


def test_realtime_streams_keep_every_chunk_through_a_broker_stop(broker_up: PrivateStack, jfk_path: Path) -> None:
    settings = broker_up.settings
    topic = "outage-chunks"
    ensure_topics(settings, [topic], partitions=3, include_service_topics=False)
    mono, fmt = prepare_audio(read_native_audio(jfk_path), "s16le16k")
    audio = {
        "ends-in-outage": mono,  # 11 s: its last chunks wait in the buffer longer than the old 30 s flush
        "defaults": np.concatenate([mono] * 4),  # 44 s: publishes through the whole outage and after it
        "small-buffer": np.concatenate([mono] * 4),  # 50 chunks of room: full 5 s into the outage, then blocks
    }
    limits = {
        "ends-in-outage": DeliveryLimits(),
        "defaults": DeliveryLimits(),
        "small-buffer": DeliveryLimits(buffer_chunks=50),
    }
    expected = {sid: len(list(plan_chunks(frames, fmt, 100.0))) for sid, frames in audio.items()}
    reports: dict[str, PublishReport] = {}
    errors: list[BaseException] = []

    def record(stream_id: str) -> None:
        try:
            with ChunkPublisher(producer_config(settings.kafka), topic, limits=limits[stream_id]) as publisher:
                reports[stream_id] = publisher.publish_frames(
                    stream_id, audio[stream_id], fmt, chunk_ms=100, realtime=True
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(sid,)) for sid in audio]
    for thread in threads:
        thread.start()
    time.sleep(5.0)  # mid-stream
    outage = broker_up.broker_outage(OUTAGE_S)
    for thread in threads:
        thread.join(timeout=240)
    assert not any(t.is_alive() for t in threads)

    assert outage.down_seconds >= OUTAGE_S
    assert errors == []  # no error reported
    assert {sid: r.chunks for sid, r in reports.items()} == expected
    assert reports["small-buffer"].blocked_seconds > 5.0  # backpressure: the call waited, it did not drop
    assert reports["defaults"].blocked_seconds == 0.0
    seqs = _seqs_by_stream(settings, topic)
    assert {sid: seqs.get(sid) for sid in audio} == {
        sid: list(range(n)) for sid, n in expected.items()
    }  # once, in order
    assert all(len(r.partitions) == 1 for r in reports.values())


def test_a_short_delivery_limit_reports_the_undelivered_count(broker_up: PrivateStack, jfk_path: Path) -> None:
    settings = broker_up.settings
    topic = "limit-chunks"
    ensure_topics(settings, [topic], partitions=1, include_service_topics=False)
    mono, fmt = prepare_audio(read_native_audio(jfk_path), "s16le16k")
    broker_up.stop_broker()
    limits = DeliveryLimits(delivery_timeout=3.0)
    started = time.monotonic()
    with (
        ChunkPublisher(producer_config(settings.kafka), topic, limits=limits) as publisher,
        pytest.raises(DeliveryFailed) as failed,
    ):
        publisher.publish_frames("limited", mono[: 16_000 * 2], fmt, chunk_ms=100)
    waited = time.monotonic() - started
    assert failed.value.undelivered == failed.value.sent == 20
    assert waited >= 3.0  # reported only once the limit passed
    assert "20 of 20 chunks not delivered" in str(failed.value)
    assert "3 s delivery timeout" in str(failed.value)


def test_cli_publish_reports_undelivered_chunks_after_its_delivery_timeout(
    broker_up: PrivateStack, jfk_path: Path, tmp_path: Path
) -> None:
    settings = broker_up.settings
    config = write_settings(settings, tmp_path / "private.toml")
    broker_up.stop_broker()
    command = [sys.executable, "-m", "stream_app.cli.main", "-c", str(config), "publish", str(jfk_path)]
    command += ["--stream-id", "cli-limited", "--chunk-ms", "1000", "--delivery-timeout", "2s"]
    command += ["--connect-timeout", "0", "--confirm", "0"]  # no first check: the outage is met while sending
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_APP_")}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert time.monotonic() - started >= 2.0
    assert "11 of 11 chunks not delivered" in done.stderr
    assert "2 s delivery timeout" in done.stderr
