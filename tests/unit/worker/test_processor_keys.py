"""Only the recorder holding a stream's key writes to it: nobody else can end it or add audio to it."""

from __future__ import annotations

from processor_standin import T0, Worker

from stream_app.wire.dlq import H_REASON, H_SOURCE_OFFSET
from stream_app.wire.stream_key import H_STREAM_KEY, key_digest

KEY, FORGED = "recorder-key-0123456789", "someone-else-9876543210"


def reasons(worker: Worker) -> list[tuple[bytes, bytes]]:
    return [
        (dict(letter.headers or [])[H_REASON], dict(letter.headers or [])[H_SOURCE_OFFSET])
        for letter in worker.outputs.dlq_topic.sent
    ]


async def test_a_forged_end_of_stream_ends_nothing_and_the_recorder_goes_on() -> None:
    worker = Worker()
    for seq in range(3):
        worker.record("a", T0 + seq * 0.1, seq=seq, loud=True, key=KEY)
    worker.record("a", T0 + 0.3, seq=50, end=True, key=FORGED)  # far ahead: held, then the stream ended by it
    worker.record("a", T0 + 0.3, seq=50, end=True)  # the same without a key
    for _ in range(8):  # past streaming.eos_grace (5 s)
        await worker.tick(1.0)
    assert not worker.ended("a")
    assert reasons(worker) == [(b"wrong_stream_key", b"3"), (b"wrong_stream_key", b"4")]
    assert all(H_STREAM_KEY not in dict(letter.headers or []) for letter in worker.outputs.dlq_topic.sent)
    for seq in range(3, 6):
        worker.record("a", T0 + 5 + seq * 0.1, seq=seq, loud=True, key=KEY, end=seq == 5)
    for _ in range(3):
        await worker.tick(1.0)
    assert worker.ended("a")
    assert len(reasons(worker)) == 2  # every chunk of the recorder taken


async def test_an_ended_stream_resumes_only_for_its_key() -> None:
    worker = Worker()
    for seq in range(3):
        worker.record("a", T0 + seq * 0.1, seq=seq, loud=True, key=KEY, end=seq == 2)
    for _ in range(3):
        await worker.tick(1.0)
    assert worker.ended("a")
    worker.record("a", T0 + 1.0, seq=3, loud=True, key=FORGED)
    await worker.tick(1.0)
    assert reasons(worker) == [(b"wrong_stream_key", b"3")]
    assert "a" not in worker.part.streams  # not resumed by the forger
    worker.record("a", T0 + 1.1, seq=3, loud=True, key=KEY)
    await worker.tick(1.0)
    assert "a" in worker.part.streams and len(reasons(worker)) == 1  # its recorder resumes it


async def test_a_stream_started_without_a_key_takes_every_writer_s_chunks() -> None:
    worker = Worker()
    worker.record("b", T0, seq=0, loud=True)
    worker.record("b", T0 + 0.1, seq=1, loud=True, key=KEY)
    worker.record("b", T0 + 0.2, seq=2, loud=True, end=True)
    for _ in range(3):
        await worker.tick(1.0)
    assert worker.ended("b") and reasons(worker) == []


async def test_the_key_survives_a_take_over() -> None:
    first = Worker()
    for seq in range(3):
        first.record("a", T0 + seq * 0.1, seq=seq, loud=True, key=KEY)
    await first.tick(1.0)
    successor = Worker(first.store)  # the next owner restores the stream from the changelog
    successor.offset = 3
    successor.record("a", T0 + 0.3, seq=3, end=True, key=FORGED)
    await successor.tick(1.0)
    assert reasons(successor) == [(b"wrong_stream_key", b"3")]


async def test_a_stream_whose_stored_state_is_unusable_restarts_only_for_its_key() -> None:
    first = Worker()
    for seq in (0, 1, 2, 4):  # seq 4 is held behind the missing 3: stored as a chunk of its own
        first.record("a", T0 + seq * 0.1, seq=seq, loud=True, key=KEY)
    await first.tick(1.0)
    first.store.audio.data.clear()  # its audio pages and held chunk are gone: the header no longer restores
    successor = Worker(first.store)
    successor.offset = 5
    successor.record("a", T0 + 0.5, seq=5, end=True, key=FORGED)
    await successor.tick(1.0)
    assert reasons(successor) == [(b"wrong_stream_key", b"5")] and "a" not in successor.part.streams
    successor.record("a", T0 + 0.6, seq=6, loud=True, key=KEY)  # its recorder: the stream starts afresh, keyed
    await successor.tick(1.0)
    assert successor.part.streams["a"].key_digest == key_digest(KEY)
    assert len(reasons(successor)) == 1
