"""Nothing lost, nothing doubled: each way the worker used to lose or double words, on the real broker.

Every test runs real worker processes on fresh topics; failures are made real too (the broker
refusing the segments, a changelog record deleted, a forged record, a replica killed), except the
model error of a window, which is injected through the worker's testing hook
(``worker.inject_window_failures``) because no real audio makes CTranslate2 raise on demand.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

from stream_app.audio.files import read_native_audio
from stream_app.clients.chunking import plan_chunks, prepare_audio
from stream_app.clients.kafka_config import consumer_config, producer_config, security_config
from stream_app.clients.transcript import TranscriptAssembler, session_order
from stream_app.config import Settings
from stream_app.local.admin import admin_client
from stream_app.testing.corpus import CorpusItem, build_corpus
from stream_app.testing.service import ServiceHarness
from stream_app.testing.wer import word_error_rate
from stream_app.wire.chunk import ChunkFormat
from stream_app.wire.chunk_codec import encode_chunk
from stream_app.wire.segment import TranscriptSegment
from stream_app.worker.app import changelog_topics
from stream_app.worker.records import page_key

FMT = ChunkFormat("s16le", 16_000, 1)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> CorpusItem:
    """About 30 s of synthetic speech with pauses: several windows."""
    return build_corpus(tmp_path_factory.mktemp("corpus"), files=1, sentences_per_file=5)[0]


def metric(harness: ServiceHarness, replica: str, name: str, labels: str = "") -> float:
    text = harness.replicas[replica].metrics()
    pattern = re.compile(rf"^{re.escape(name)}{re.escape(labels)}\s+([0-9.e+-]+)$", re.M)
    return sum(float(m) for m in pattern.findall(text))


def ready_status(harness: ServiceHarness, replica: str) -> int:
    url = f"http://127.0.0.1:{harness.replicas[replica].metrics_port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def set_topic_config(settings: Settings, topic: str, name: str, value: str) -> None:
    admin = admin_client(settings.kafka.bootstrap_servers, security_config(settings.kafka))
    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)],
    )
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


def records(stream_id: str, path: Path, chunk_ms: float = 100.0) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    frames, _ = prepare_audio(read_native_audio(path), "s16le16k", "s16le")
    return [
        encode_chunk(stream_id, c.seq, c.offset, c.pcm, FMT, c.end_of_stream, "test:recorder")
        for c in plan_chunks(frames, FMT, chunk_ms)
    ]


def inside_speech(path: Path, chunk_ms: float = 100.0, before_s: float = 3.0) -> int:
    """Return a chunk index in the middle third of ``path`` that ends the loudest ``before_s`` of audio.

    A stream stopped there has an open window holding seconds of speech, so its state names whole audio
    pages (at a pause the stream keeps almost no audio, and no page).
    """
    frames, _ = prepare_audio(read_native_audio(path), "s16le16k", "s16le")
    per_chunk = int(16_000 * chunk_ms / 1000)
    count = len(frames) // per_chunk
    loud = [float(np.sqrt(np.mean(np.square(frames[i * per_chunk : (i + 1) * per_chunk])))) for i in range(count)]
    span = int(before_s * 1000 / chunk_ms)
    candidates = range(max(count // 3, span), 2 * count // 3)
    return max(candidates, key=lambda i: (min(loud[i - 2 : i + 1]) > 0.3 * max(loud), sum(loud[i - span : i + 1])))


def produce(harness: ServiceHarness, items: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> None:
    producer = Producer(producer_config(harness.settings.kafka))
    for key, value, headers in items:
        producer.produce(harness.settings.kafka.input_topic, key=key, value=value, headers=headers)
        producer.poll(0)
    assert producer.flush(30) == 0


def test_refused_segments_are_retried_and_never_acknowledged_past(
    settings: Settings, jfk_path: Path, jfk_reference: str
) -> None:
    """The broker refuses every segment for a while; the replica is killed then; nothing is lost."""
    with ServiceHarness(settings, partitions=1) as harness:
        harness.start("r1")
        output = harness.settings.kafka.output_topic
        set_topic_config(harness.settings, output, "max.message.bytes", "64")  # every segment is too large
        with harness.publisher() as publisher:
            publisher.publish_file(jfk_path, "refused", chunk_ms=100)
        deadline = time.monotonic() + 120
        while metric(harness, "r1", "stream_app_processing_errors_total", '{kind="broker"}') < 3:
            assert time.monotonic() < deadline, harness.log_tail("r1")
            time.sleep(0.5)
        assert ready_status(harness, "r1") == 503  # it cannot publish: not ready
        harness.stop("r1", kill=True)  # the records whose segments were refused must not be committed
        set_topic_config(harness.settings, output, "max.message.bytes", "1048588")
        harness.start("r1")
        collected = harness.collect(["refused"], timeout=120)["refused"]
        assert collected.transcript.complete, harness.log_tail("r1")
        assert word_error_rate(jfk_reference, collected.transcript.text) <= 0.10
        assert [d.reason for d in harness.dead_letters(timeout=3)] == []


def test_out_of_order_giant_chunks_stay_under_the_record_limit(settings: Settings, jfk_path: Path) -> None:
    """Three 1 MB chunks of 8 kHz audio held behind a hole used to make a 12 MB state record."""
    with ServiceHarness(settings, partitions=1) as harness:
        harness.start("r1")
        fmt8 = ChunkFormat("s16le", 8_000, 1)
        samples = 480_000  # 960 kB of s16le: 60 s at 8 kHz, just under the producer's 1 MB message limit
        pcm = (b"\x10\x00\x20\x00" * (samples // 2))[: samples * 2]
        giant = [encode_chunk("giant", seq, seq * samples, pcm, fmt8, False, "test:recorder") for seq in (3, 2, 1)]
        produce(harness, giant)
        with harness.publisher() as publisher:
            publisher.publish_file(jfk_path, "neighbour", chunk_ms=100)
        collected = harness.collect(["neighbour"], timeout=180)["neighbour"]
        assert collected.transcript.complete, harness.log_tail("r1")
        assert harness.replicas["r1"].running
        harness.stop("r1", kill=True)
        harness.start("r1")  # the state it restores from the changelog reads back
        largest = 0
        consumer = Consumer({**consumer_config(harness.settings.kafka), "group.id": f"{harness.group_id}-check"})
        try:
            for topic in changelog_topics(harness.settings):
                consumer.assign([TopicPartition(topic, 0, -2)])
                idle_since = time.monotonic()
                while time.monotonic() - idle_since < 3:
                    message = consumer.poll(0.5)
                    if message is None or message.error():
                        continue
                    idle_since = time.monotonic()
                    largest = max(largest, len(message.value() or b""))
        finally:
            consumer.close()
        assert 0 < largest < 5 * 1024 * 1024  # a held chunk is paged as its own record (4 MB at most)


def test_a_page_lost_from_the_changelog_is_reported_and_the_stream_reset(
    settings: Settings, speech: CorpusItem
) -> None:
    with ServiceHarness(settings, partitions=1) as harness:
        harness.start("r1")
        items = records("lossy", speech.path)
        half = inside_speech(speech.path)  # stopped inside an utterance: its audio is in whole pages
        produce(harness, items[:half])
        with harness.tail() as tail:
            first = next(s for s in tail.segments(timeout=120) if s.stream_id == "lossy")
        time.sleep(2 * harness.settings.worker.state_flush_interval + 1)
        harness.stop("r1")
        audio_changelog = changelog_topics(harness.settings)[1]
        producer = Producer(producer_config(harness.settings.kafka))
        for page in range(0, 600):  # tombstones for every page (second) the stream may hold
            producer.produce(audio_changelog, key=page_key("lossy", first.session, page), value=None, partition=0)
        assert producer.flush(30) == 0
        harness.replicas.clear()
        harness.start("r2")  # a fresh replica: restores only from the changelog
        produce(harness, items[half:])
        collected = harness.collect(["lossy"], timeout=180)["lossy"]
        assert collected.transcript.complete, harness.log_tail("r2")
        finals = collected.finals()
        lost = [s for s in finals if any(g.reason == "state_lost" for g in s.gaps)]
        assert len(lost) == 1 and lost[0].session != first.session, harness.log_tail("r2")
        assert lost[0].index == 0 and finals[-1].end_of_stream and finals[-1].session == lost[0].session
        assert metric(harness, "r2", "stream_app_state_resets_total") == 1


def test_a_failing_window_keeps_the_held_words_and_marks_the_gap(settings: Settings, speech: CorpusItem) -> None:
    env = {
        "STREAM_APP_WORKER__INJECT_WINDOW_FAILURES": "faulty:1:3",
        "STREAM_APP_STREAMING__MAX_WINDOW_ATTEMPTS": "3",
        # words final at pauses only, no previews: decode 1 is the second pause, and its words come only from it
        "STREAM_APP_STREAMING__PROFILE": "throughput",
        "STREAM_APP_STREAMING__UTTERANCE_PAUSE": "400ms",  # pauses inside the window (the default closes it at 2 s)
    }
    with ServiceHarness(settings, partitions=1, env=env) as harness:
        harness.start("r1")
        produce(harness, records("reference", speech.path) + records("faulty", speech.path))
        collected = harness.collect(["reference", "faulty"], timeout=240)
        reference, faulty = collected["reference"], collected["faulty"]
        assert reference.transcript.complete and faulty.transcript.complete, harness.log_tail("r1")
        gapped = [s for s in faulty.finals() if s.gaps]
        assert len(gapped) == 1 and gapped[0].gaps[0].reason == "inference_failed"
        gap = gapped[0].gaps[0]
        ref_words = [w for s in reference.finals() for w in s.words]
        got = [w.text for s in faulty.finals() for w in s.words]
        before = [w.text for w in ref_words if w.end <= gap.start - 0.3]  # what window 0 heard and held included
        assert got[: len(before)] == before, (gap, got, before)
        assert any(w.start >= gap.end for s in faulty.finals() for w in s.words)  # the stream went on after it
        letters = harness.dead_letters(expect=1)
        assert [(d.reason, d.headers["dlq_window"]) for d in letters] == [("inference_failed", b"1")]
        first, last = (int(x) for x in letters[0].headers["dlq_source_offsets"].split(b"-"))
        assert 0 <= first <= last  # the input records that carried the window's audio
        assert metric(harness, "r1", "stream_app_window_failures_total", '{reason="inference_failed"}') == 1


def test_a_pause_past_the_idle_timeout_resumes_in_a_new_session(settings: Settings, speech: CorpusItem) -> None:
    env = {"STREAM_APP_STREAMING__IDLE_TIMEOUT": "3s"}
    with ServiceHarness(settings, partitions=1, env=env) as harness:
        harness.start("r1")
        items = records("paused", speech.path)
        half = len(items) // 2
        produce(harness, items[:half])
        with harness.tail() as tail:  # the first part ends by the idle timeout
            first = next(s for s in tail.segments(timeout=120) if s.stream_id == "paused" and s.end_of_stream)
        produce(harness, items[half:])
        segments: list[TranscriptSegment] = []
        with harness.tail() as tail:  # read both sessions, up to the second one's end
            for segment in tail.segments(timeout=180):
                if segment.stream_id == "paused":
                    segments.append(segment)
                    if segment.end_of_stream and segment.session != first.session:
                        break
        assembler = TranscriptAssembler("paused")
        for segment in segments:
            assembler.add(segment)
        transcript = assembler.result()
        assert transcript.complete, harness.log_tail("r1")
        finals = transcript.segments
        sessions = sorted({s.session for s in finals}, key=session_order)
        assert len(sessions) == 2, harness.log_tail("r1")
        texts: dict[str, set[str]] = {}
        for segment in segments:
            if segment.is_final:
                texts.setdefault(segment.segment_id, set()).add(segment.text)
        assert all(len(t) == 1 for t in texts.values())  # no id published final with two texts
        second = [s for s in finals if s.session == sessions[1]]
        assert second[0].start >= finals[0].end and " ".join(s.text for s in second).strip()
        assert next(s.segment_id.rsplit(":", 1)[1] for s in second) == "0"  # the new session counts from 0
        assert word_error_rate(speech.reference, transcript.text) <= 0.45
        assert [d.reason for d in harness.dead_letters(timeout=3)] == []


def test_a_forged_idle_tick_ends_nothing(settings: Settings, jfk_path: Path, jfk_reference: str) -> None:
    with ServiceHarness(settings, partitions=1) as harness:
        harness.start("r1")
        items = records("target", jfk_path)
        forged = (b"target", b"", [("ce_type", b"dev.stream-app.stream.idle"), ("ce_seq", b"2")])
        produce(harness, [*items[:30], forged, *items[30:]])
        collected = harness.collect(["target"], timeout=120)["target"]
        assert collected.transcript.complete, harness.log_tail("r1")
        assert word_error_rate(jfk_reference, collected.transcript.text) <= 0.10
        assert len({s.session for s in collected.finals()}) == 1
        assert [d.reason for d in harness.dead_letters(expect=1)] == ["missing_header"]


def test_a_chunk_after_the_end_is_dead_lettered_as_after_end(settings: Settings, jfk_path: Path) -> None:
    with ServiceHarness(settings, partitions=1) as harness:
        harness.start("r1")
        items = records("ended", jfk_path)
        produce(harness, items)
        collected = harness.collect(["ended"], timeout=120)["ended"]
        assert collected.transcript.complete, harness.log_tail("r1")
        produce(harness, [items[5]])  # a replay of a chunk from before the end
        letters = harness.dead_letters(expect=1)
        assert [(d.reason, d.key) for d in letters] == [("after_end", b"ended")]
        assert metric(harness, "r1", "stream_app_late_chunks_total") == 1
        assert metric(harness, "r1", "stream_app_processing_errors_total") == 0


def test_a_window_that_kills_the_worker_is_dead_lettered_and_its_neighbour_is_not(
    settings: Settings, speech: CorpusItem
) -> None:
    attempts = 2
    env = {
        "STREAM_APP_WORKER__INJECT_WINDOW_CRASHES": "poison:1",  # the process dies as the model starts it
        "STREAM_APP_CACHING__CACHE_LEVELS": "[]",  # both streams carry the same audio: no answer from a cache
        "STREAM_APP_STREAMING__MAX_WINDOW_ATTEMPTS": str(attempts),
        "STREAM_APP_STREAMING__PROFILE": "throughput",  # decodes at pauses only: decode 1 is a middle one
    }
    with ServiceHarness(settings, partitions=1, env=env) as harness:
        harness.start("r1")
        produce(harness, records("neighbour", speech.path) + records("poison", speech.path))
        crashes = 0
        deadline = time.monotonic() + 300
        while crashes < attempts:  # each crash is a new replica process taking the partition over
            assert time.monotonic() < deadline, harness.log_tail("r1")
            process = harness.replicas["r1"].process
            assert process is not None
            if process.poll() is None:
                time.sleep(0.5)
                continue
            assert process.returncode == 70, harness.log_tail("r1")
            crashes += 1
            # no wait for readiness: the new replica may take the poison window (and die) before it says so
            harness.start("r1", wait=0)
        collected = harness.collect(["neighbour", "poison"], timeout=240)
        assert harness.replicas["r1"].running, harness.log_tail("r1")  # no further crash: the window was given up
        neighbour, poison = collected["neighbour"], collected["poison"]
        assert neighbour.transcript.complete and poison.transcript.complete, harness.log_tail("r1")
        assert [g for s in neighbour.finals() for g in s.gaps] == []  # batched with the poison once at most
        gaps = [g for s in poison.finals() for g in s.gaps]
        assert [g.reason for g in gaps] == ["poison_window"], gaps
        assert word_error_rate(speech.reference, neighbour.transcript.text) < 0.35
        letters = harness.dead_letters(expect=1)
        found = [(d.reason, d.headers.get("dlq_window")) for d in letters]
        assert found == [("poison_window", b"1")], [d.headers for d in letters]
