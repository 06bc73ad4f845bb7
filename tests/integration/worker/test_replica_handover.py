"""Partitions change owner without a cold step: a graceful stop hands over at once, a quick restart of the
same replica moves nothing, and a killed replica's partitions go to the warm standby copy.

Real worker processes on the local stack (`ServiceHarness`). Waits are bounded and outcomes asserted:
where a test shows that something happens *before* a timeout would have done it, the timeout is set
far beyond the test's bounded wait, so the outcome differs.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from aiokafka.partitioner import murmur2

from stream_app.audio.files import read_native_audio
from stream_app.clients.chunking import prepare_audio
from stream_app.config import Settings
from stream_app.testing.disruptions import owned_partitions
from stream_app.testing.service import ServiceHarness
from stream_app.testing.topic_reader import read_topic
from stream_app.testing.wer import word_error_rate
from stream_app.worker.app import STANDBY_BUFFER, TABLES
from stream_app.worker.outputs import REPLICA_HEADER

# keys on every one of the 4 partitions (murmur2, as the publisher partitions): whichever two a replica
# owns, it transcribes some of the streams (0-5 all hash to partitions 0 and 2)
STREAMS = [f"handover-{i}" for i in (0, 1, 2, 8, 9, 10)]


def partition_of(stream_id: str, partitions: int) -> int:
    return (murmur2(stream_id.encode()) & 0x7FFFFFFF) % partitions


LONG_SESSION = {"STREAM_APP_WORKER__SESSION_TIMEOUT": "60s"}  # a replica that does not leave holds on 60 s


def counter(metrics: str, name: str, labels: str = "") -> float:
    """Sum of a counter's samples whose labels contain ``labels`` (0 when absent)."""
    pattern = re.compile(rf"^{name}_total(?:\{{([^}}]*)\}})? (\S+)$", re.MULTILINE)
    return sum(float(value) for found, value in pattern.findall(metrics) if labels in found)


def publish_live(harness: ServiceHarness, frames: np.ndarray, fmt: object) -> list[threading.Thread]:
    """Publish ``frames`` as every stream of `STREAMS`, in real time, one recorder thread each."""

    def record(stream_id: str) -> None:
        with harness.publisher() as publisher:
            publisher.publish_frames(stream_id, frames, fmt, chunk_ms=200, realtime=True)  # type: ignore[arg-type]

    threads = [threading.Thread(target=record, args=(sid,), daemon=True) for sid in STREAMS]
    for thread in threads:
        thread.start()
    return threads


def publishers(harness: ServiceHarness, stream_ids: Sequence[str]) -> dict[str, list[tuple[int, str]]]:
    """Per stream, ``(publish ms, replica)`` of every segment on the output topic, in order."""
    out: dict[str, list[tuple[int, str]]] = {sid: [] for sid in stream_ids}
    for record in read_topic(harness.settings.kafka, harness.settings.kafka.output_topic):
        stream = (record.key or b"").decode()
        if stream in out:
            out[stream].append((record.timestamp_ms, dict(record.headers).get(REPLICA_HEADER, b"").decode()))
    return out


def twice(jfk_path: Path, times: int = 2) -> tuple[np.ndarray, object]:
    frames, fmt = prepare_audio(read_native_audio(jfk_path), "s16le16k", "s16le")
    return np.concatenate([frames] * times), fmt


def wait_for(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.5)
    return False


def test_a_stopped_replicas_streams_continue_on_another_replica_with_no_missing_words(
    settings: Settings, jfk_path: Path, jfk_reference: str
) -> None:
    frames, fmt = twice(jfk_path, 3)
    with ServiceHarness(settings, env=LONG_SESSION) as harness:
        assert {partition_of(sid, harness.partitions or 0) for sid in STREAMS} == set(range(harness.partitions or 0))
        harness.start("a", wait=0)
        harness.start("b", wait=0)
        harness.wait_ready("a")
        harness.wait_ready("b")
        recorders = publish_live(harness, frames, fmt)
        # every stream is being transcribed by its owner: wait for a's first segment (a loaded machine is
        # slower to the first one; 14 s was once too short), well before the 33 s streams end
        wait_for(lambda: any(r == "a" for items in publishers(harness, STREAMS).values() for _, r in items), 22.0)
        harness.stop("a")  # SIGTERM: a rolling upgrade, a scale-in
        process = harness.replicas["a"].process
        exit_status = None if process is None else process.returncode
        stopped_at = int(time.time() * 1000)
        for thread in recorders:
            thread.join(60)
        # bounded well below the 60 s session: only a replica that left the group lets these complete
        collected = harness.collect(STREAMS, timeout=40)
        log = harness.log_tail("a", 200)
        seen = publishers(harness, STREAMS)
    assert "handed over in" in log and "left the consumer group in" in log, log  # LeaveGroup answered
    assert exit_status == 0, log  # a clean stop: nothing crashed on the way out
    # it leaves the group before faust closes its tables (the partitions move that much sooner), for good
    assert log.index("left the consumer group in") < log.index("GuardedTable: streams]: Stopping"), log
    assert "re-joining group" not in log.split("left the consumer group in", 1)[1], log
    moved = [sid for sid, items in seen.items() if any(r == "a" for at, r in items if at < stopped_at)]
    assert moved, seen  # the premise: the stopped replica was transcribing some of the streams
    for sid in moved:
        assert {r for at, r in seen[sid] if at > stopped_at + 5_000} == {"b"}, seen[sid]
    for sid in STREAMS:
        transcript = collected[sid].transcript
        assert transcript.complete, sid
        assert word_error_rate(" ".join([jfk_reference] * 3), transcript.text) <= 0.10, (sid, transcript.text)
        finals = collected[sid].finals()
        assert [s.index for s in finals] == list(range(len(finals)))
        texts: dict[str, set[str]] = {}
        for segment in collected[sid].segments:
            if segment.is_final:
                texts.setdefault(segment.segment_id, set()).add(segment.text)
        assert all(len(t) == 1 for t in texts.values()), texts


def test_a_replica_back_within_the_session_timeout_gets_its_partitions_without_a_rebalance(
    settings: Settings, jfk_path: Path, jfk_reference: str
) -> None:
    with ServiceHarness(settings, env=LONG_SESSION) as harness:
        harness.start("a", wait=0)
        harness.start("b", wait=0)
        harness.wait_ready("a")
        harness.wait_ready("b")
        a, b = harness.replicas["a"], harness.replicas["b"]
        assert wait_for(lambda: len(owned_partitions(a.metrics()) | owned_partitions(b.metrics())) == 4, 60)
        before = owned_partitions(a.metrics())
        rebalances = counter(b.metrics(), "stream_app_rebalances")
        harness.stop("a", kill=True)
        harness.start("a")  # the same name: the same group instance id and state folder
        after = owned_partitions(a.metrics())
        others = counter(b.metrics(), "stream_app_rebalances")
        with harness.publisher() as publisher:
            publisher.publish_file(jfk_path, "after-restart", chunk_ms=200)
        collected = harness.collect(["after-restart"], timeout=120)["after-restart"]
    assert before and after == before
    assert others == rebalances  # the other replica never stopped its partitions
    assert collected.transcript.complete
    assert word_error_rate(jfk_reference, collected.transcript.text) <= 0.10, collected.transcript.text


def test_a_killed_replicas_partitions_are_promoted_from_the_standby_copy(
    settings: Settings, jfk_path: Path, jfk_reference: str
) -> None:
    frames, fmt = twice(jfk_path, 3)  # long enough for the standby buffers to fill on a loaded machine
    with ServiceHarness(settings) as harness:  # the default timings: standby copies, 6 s session
        harness.start("a", wait=0)
        harness.start("b", wait=0)
        harness.wait_ready("a")
        harness.wait_ready("b")
        b = harness.replicas["b"]
        recorders = publish_live(harness, frames, fmt)
        time.sleep(10.0)
        # the standby applies what it mirrors in buffers: on a loaded machine the first may take longer
        standby = 'role="standby"'
        assert wait_for(lambda: counter(b.metrics(), "stream_app_changelog_records_restored", standby) > 0, 90)
        mirrored = counter(b.metrics(), "stream_app_changelog_records_restored", standby)
        restored = counter(b.metrics(), "stream_app_changelog_records_restored", 'role="active"')
        lost = owned_partitions(harness.replicas["a"].metrics())
        harness.stop("a", kill=True)
        for thread in recorders:
            thread.join(60)
        collected = harness.collect(STREAMS, timeout=120)
        replayed = counter(b.metrics(), "stream_app_changelog_records_restored", 'role="active"') - restored
        owned = owned_partitions(b.metrics())
    assert lost and lost <= owned  # b took a's partitions over
    # b kept a's partitions warm, and took them over replaying at most what its standby buffer still held
    assert mirrored > replayed, (mirrored, replayed)
    assert replayed <= len(lost) * len(TABLES) * STANDBY_BUFFER, (replayed, mirrored)
    for sid in STREAMS:
        transcript = collected[sid].transcript
        assert transcript.complete, sid
        assert word_error_rate(" ".join([jfk_reference] * 3), transcript.text) <= 0.10, (sid, transcript.text)
