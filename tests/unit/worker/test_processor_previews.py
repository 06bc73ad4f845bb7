"""Previews go to streams someone watches live; a stream catching up spends its decodes on finals."""

from __future__ import annotations

from processor_standin import T0, Worker


async def test_a_stream_sent_faster_than_real_time_gets_no_previews() -> None:
    worker = Worker()
    for _ in range(200):  # 20 s of speech published at once (a file, or a backlog after a failover)
        worker.record("fast", T0, loud=True)
    for _ in range(40):
        await worker.tick(0.25)
    assert "tick" in worker.kinds and "preview" not in worker.kinds


async def test_a_stream_sent_in_real_time_gets_previews() -> None:
    worker = Worker()
    for i in range(100):  # 10 s of speech, each chunk as it is said
        worker.record("live", T0 + i * 0.1, loud=True)
        await worker.tick(0.1)
    assert "preview" in worker.kinds and "tick" in worker.kinds
