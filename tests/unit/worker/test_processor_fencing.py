"""Owner epochs: each owner fences its predecessor before writing; a revoked owner writes nothing (item 7)."""

from __future__ import annotations

from processor_standin import T0, Worker

from stream_app.metrics import worker_metrics as m
from stream_app.streaming import LiveConfig
from stream_app.testing.tables import MemoryTable
from stream_app.worker.fencing import FENCE_KEY, OwnerEpochs, decode_fence
from stream_app.worker.records import StreamHeader
from stream_app.worker.store import StreamStore


async def test_each_owner_fences_the_last_before_it_writes_and_a_revoked_reader_writes_nothing() -> None:
    streams, audio = MemoryTable(), MemoryTable()
    store = StreamStore(streams, audio, LiveConfig(), OwnerEpochs())  # one process: one registry
    first = Worker(store)
    await first.processor.claim(first.part)
    assert first.part.epoch == 1 and decode_fence(streams.get(0, FENCE_KEY)) == 1
    first.record("a", T0)
    await first.tick(1.0)
    header = store.read(0, "a")
    assert isinstance(header, StreamHeader) and (header.epoch, header.input_offset) == (1, 0)

    first.processor.release(0)  # revoked; the partition goes to the next owner (the same changelogs)
    second = Worker(store)
    await second.processor.claim(second.part)
    assert second.part.epoch == 2 and decode_fence(audio.get(0, FENCE_KEY)) == 2

    refused = m.FENCED_WRITES.labels(where="write")._value.get()
    writes = streams.writes + audio.writes
    first.record("a", T0 + 1.0)  # the old owner's reader was parked in backpressure and wakes up
    assert streams.writes + audio.writes == writes  # not applied, not stored
    assert first.outputs.dlq_topic.sent == []  # and not dead-lettered: the new owner reads it
    assert m.FENCED_WRITES.labels(where="write")._value.get() == refused + 1
