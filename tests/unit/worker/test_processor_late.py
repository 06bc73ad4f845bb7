"""A chunk that turns up after it was declared lost is dead-lettered as ``late_chunk``, not dropped."""

from __future__ import annotations

import logging

import pytest
from processor_standin import T0, Worker

from stream_app.metrics import worker_metrics as m
from stream_app.wire.dlq import H_REASON


async def test_a_chunk_declared_lost_that_arrives_later_is_dead_lettered_as_late() -> None:
    worker = Worker()
    worker.record("a", T0, seq=0)
    for seq in range(2, 2 + 65):  # more than max_reorder_chunks (64) held behind seq 1: it is declared lost
        worker.record("a", T0 + seq * 0.1, seq=seq)
    await worker.tick(1.0)
    assert worker.outputs.dlq_topic.sent == []
    worker.record("a", T0 + 7.0, seq=1)
    await worker.tick(1.0)
    [letter] = worker.outputs.dlq_topic.sent
    headers = dict(letter.headers or [])
    assert headers[H_REASON] == b"late_chunk"
    assert letter.key == b"a"


async def test_a_restored_stream_whose_first_record_skips_sequence_numbers_says_where_state_and_reading_stand(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = Worker()
    for seq in range(5):
        first.record("a", T0 + seq * 0.1, seq=seq)
    await first.tick(1.0)
    successor = Worker(first.store)  # the next owner: the stored state goes on at seq 5
    successor.offset = 9
    with caplog.at_level(logging.INFO, logger="stream_app.worker.processor"):
        successor.record("a", T0 + 1.0, seq=8)
    assert "partition 0: reading from offset 9" in caplog.text
    assert (
        "stream a: stored state goes on at seq 5 (input offset 4); the first record read, in[0]@9, carries seq 8"
        in caplog.text
    )


async def test_records_of_an_ended_stream_read_again_after_a_restart_are_acknowledged_not_dead_lettered() -> None:
    first = Worker()
    for seq in range(5):
        first.record("a", T0 + seq * 0.1, seq=seq, loud=True)
    first.record("a", T0 + 0.5, seq=5, end=True)
    for _ in range(3):
        await first.tick(1.0)
    assert first.ended("a")
    successor = Worker(first.store)  # killed before its offsets were committed: the next owner reads them again
    for seq in range(6):
        successor.record("a", T0 + seq * 0.1, seq=seq, loud=True, end=seq == 5)
    await successor.tick(1.0)
    assert successor.outputs.dlq_topic.sent == []
    assert successor.part.acks.in_flight == 0  # every one acknowledged: the group's offset moves past them
    assert successor.outputs.output_topic.sent == []  # and nothing published again
    successor.record("a", T0 + 9.0, seq=3)  # a new record replaying an old sequence number: a recorder's fault
    await successor.tick(1.0)
    [letter] = successor.outputs.dlq_topic.sent
    assert dict(letter.headers or [])[H_REASON] == b"after_end"


async def test_audio_a_chunk_repeats_over_stream_time_already_received_is_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker = Worker()
    before = m.OVERLAPPING_AUDIO._value.get()
    worker.record("a", T0, seq=0)
    with caplog.at_level(logging.WARNING, logger="stream_app.worker.processor"):
        worker.record("a", T0 + 0.1, seq=1, offset=800)  # its offset half a chunk behind the audio sent before it
    await worker.tick(1.0)
    assert m.OVERLAPPING_AUDIO._value.get() - before == pytest.approx(0.05)
    assert "stream a: 800 samples of a chunk repeat stream time already received" in caplog.text
