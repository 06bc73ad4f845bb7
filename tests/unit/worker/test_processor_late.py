"""A chunk that turns up after it was declared lost is dead-lettered as ``late_chunk``, not dropped."""

from __future__ import annotations

from processor_standin import T0, Worker

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
