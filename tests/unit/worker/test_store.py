from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.streaming import LiveConfig, MergePolicy, StreamSession
from stream_app.testing.tables import MemoryTable, state_fingerprint
from stream_app.wire.chunk import AudioChunk
from stream_app.worker.exceptions import Fenced, StateCorrupt
from stream_app.worker.fencing import FENCE_KEY, OwnerEpochs, decode_fence
from stream_app.worker.live import LiveStream
from stream_app.worker.records import (
    PAGE_SAMPLES,
    EndedMarker,
    StreamHeader,
    decode_samples,
    decode_stream_record,
    page_key,
)
from stream_app.worker.store import StreamStore
from stream_app.worker.tables import WriteStamp

CONFIG = LiveConfig.from_seconds(max_held=20.0)


def noise(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, n).astype(np.float32)


def new_store() -> tuple[StreamStore, MemoryTable, MemoryTable]:
    streams, audio = MemoryTable(), MemoryTable()
    return StreamStore(streams, audio, CONFIG), streams, audio


def feed(live: LiveStream, store: StreamStore, chunks: list[AudioChunk]) -> None:
    for chunk in chunks:
        live.session.feed(chunk)
        store.write_audio(live)


def chunks_of(audio: np.ndarray, size: int, first_seq: int = 0) -> list[AudioChunk]:
    return [
        AudioChunk("s", first_seq + i, offset, audio[offset : offset + size])
        for i, offset in enumerate(range(0, len(audio), size))
    ]


def restore(store: StreamStore) -> LiveStream:
    stored = store.read(0, "s")
    assert isinstance(stored, StreamHeader)
    return store.restore(0, "s", stored)


async def test_state_round_trip_is_exact_and_headers_stay_small() -> None:
    store, streams, audio = new_store()
    live = LiveStream("s", 0, StreamSession("s", CONFIG, session="0.0"))
    feed(live, store, chunks_of(noise(5 * 16_000 + 777), 1600))
    await store.write_header(live)
    assert len(streams.get(0, b"s") or b"") < PAGE_SAMPLES * 4 + 2048  # the header holds under one page of audio
    restored = restore(store)
    assert state_fingerprint(restored.session) == state_fingerprint(live.session)
    assert len(audio.data[0]) == 5  # five whole pages, the rest is in the header


async def test_holes_declared_lost_are_restored_as_runs_and_an_earlier_release_reads_its_own_list() -> None:
    store, _, _ = new_store()
    live = LiveStream("s", 0, StreamSession("s", CONFIG, session="0.0"))
    far = 10**12
    feed(live, store, [AudioChunk("s", 0, 0, noise(1600)), AudioChunk("s", far, 1600, noise(1600), end_of_stream=True)])
    live.session.buffer.close()
    await store.write_header(live)
    restored = restore(store)
    assert restored.session.buffer.lost_runs == [(1, far)]
    header = store.read(0, "s")
    assert isinstance(header, StreamHeader)
    assert header.buffer["lost"] == list(range(far - 256, far))  # what a replica of an earlier release reads: bounded
    earlier = dataclasses.replace(header, buffer={k: v for k, v in header.buffer.items() if k != "lost_runs"})
    assert store.restore(0, "s", earlier).session.buffer.lost_runs == [(seq, seq + 1) for seq in range(far - 256, far)]
    damaged = dataclasses.replace(header, buffer={**header.buffer, "lost_runs": [[5, 5]]})
    with pytest.raises(StateCorrupt, match="lost runs"):
        store.restore(0, "s", damaged)


async def test_a_restored_stream_keeps_the_merge_rule_it_was_started_with() -> None:
    # a rolling upgrade that changes the settling rule or the commit margin must not change how a moved
    # stream's replayed decodes become finals (they would publish other words under used segment ids)
    started = LiveConfig.from_seconds(max_held=20.0, commit_lookahead=2.0, settle_after=0)
    store = StreamStore(MemoryTable(), MemoryTable(), started)
    live = LiveStream("s", 0, StreamSession("s", started, MergePolicy.of(started), session="0.0"))
    feed(live, store, chunks_of(noise(3 * 16_000), 1600))
    await store.write_header(live)
    upgraded = LiveConfig.from_seconds(max_held=20.0, commit_lookahead=0.5, settle_after=3)
    other = StreamStore(store.streams, store.audio, upgraded)
    restored = restore(other)
    assert restored.session.config == started
    assert restored.session.merger.policy == MergePolicy(commit_lookahead=2.0, settle_after=0)


async def test_a_stream_stored_without_its_settling_rule_settles_as_its_replica_is_configured() -> None:
    # a header of be5a202 held the rule without settle_after: that release settled by its configuration
    store = StreamStore(MemoryTable(), MemoryTable(), CONFIG)
    live = LiveStream("s", 0, StreamSession("s", CONFIG, session="0.0"))
    feed(live, store, chunks_of(noise(3 * 16_000), 1600))
    await store.write_header(live)
    stored = store.read(0, "s")
    assert isinstance(stored, StreamHeader)
    older = dataclasses.replace(stored, settling_stored=False)
    configured = dataclasses.replace(CONFIG, settle_after=3)
    other = StreamStore(store.streams, store.audio, configured)
    restored = other.restore(0, "s", older)
    assert restored.session.config.settle_after == 3 and restored.session.merger.policy.settle_after == 3
    assert store.restore(0, "s", stored).session.merger.policy.settle_after == CONFIG.settle_after


async def test_out_of_order_chunks_are_paged_not_kept_in_the_header() -> None:
    store, streams, _ = new_store()
    live = LiveStream("s", 0, StreamSession("s", CONFIG, session="0.0"))
    big = chunks_of(noise(3 * 64_000), 64_000)  # three 4 s chunks, sent in reverse
    feed(live, store, [big[2], big[1]])
    await store.write_header(live)
    assert live.session.buffer.pending_count == 2
    assert len(streams.get(0, b"s") or b"") < 4096
    restored = restore(store)
    assert state_fingerprint(restored.session) == state_fingerprint(live.session)
    feed(restored, store, [big[0]])  # the hole fills on the replica that took over
    assert restored.session.buffer.next_seq == 3 and restored.session.buffer.pending_count == 0


async def test_pages_no_window_needs_are_deleted_after_the_header() -> None:
    store, _, audio = new_store()
    live = LiveStream("s", 0, StreamSession("s", CONFIG, session="0.0"))
    feed(live, store, chunks_of(noise(25 * 16_000), 16_000))
    live.session.buffer.release_to(12 * 16_000)  # a window was cut there: the audio before it is not needed
    await store.write_header(live)
    await asyncio.sleep(0)
    base = live.session.buffer.base
    assert min(int.from_bytes(k[-8:], "big") for k in audio.data[0]) == base // PAGE_SAMPLES
    assert state_fingerprint(restore(store).session) == state_fingerprint(live.session)


async def test_a_missing_or_stale_page_is_detected_not_transcribed() -> None:
    store, _, audio = new_store()
    live = LiveStream("s", 0, StreamSession("s", CONFIG, session="0.0"))
    feed(live, store, chunks_of(noise(3 * 16_000 + 5), 1600))
    await store.write_header(live)
    key = page_key("s", "0.0", 1)
    good = audio.data[0][key]
    audio.data[0][key] = good[:8] + noise(16_000, seed=9).tobytes()  # another version of the page
    with pytest.raises(StateCorrupt, match="stale or damaged"):
        restore(store)
    del audio.data[0][key]
    with pytest.raises(StateCorrupt, match="missing"):
        restore(store)


@pytest.mark.parametrize("released_later", [None, 3 * PAGE_SAMPLES + 100])
async def test_a_stream_restored_with_its_start_inside_a_page_stores_that_page_readably(
    released_later: int | None,
) -> None:
    # a pause keeps only the audio from just before its end: the start fell inside the last, partial page.
    # The replica that took the stream over wrote that page from the start on, past the page's end, and
    # the next take-over found it "stale or damaged" (or holding other samples): the stream started afresh.
    P = PAGE_SAMPLES
    store, _, audio = new_store()
    recorded = noise(6 * P)
    chunks = chunks_of(recorded, 1600)
    live = LiveStream("s", 0, StreamSession("s", CONFIG, session="0.0"))
    feed(live, store, chunks[:25])  # 2.5 pages
    live.session.buffer.release_to(2 * P + 4000)
    await store.write_header(live)
    taken = restore(store)
    assert taken.pages_written_until % P == 0
    feed(taken, store, chunks[25:45])  # to 4.5 pages: page 2 and 3 become whole
    if released_later is not None:
        taken.session.buffer.release_to(released_later)
    await store.write_header(taken)
    again = restore(store)  # the next take-over
    assert state_fingerprint(again.session) == state_fingerprint(taken.session)
    stored = store.read(0, "s")
    assert isinstance(stored, StreamHeader) and 3 in stored.page_crcs
    for page in stored.page_crcs:  # each page holds its own samples, up to its end (from its start when whole)
        start, samples = decode_samples(audio.data[0][page_key("s", "0.0", page)])
        assert page * P <= start <= max(page * P, taken.session.buffer.base)
        assert np.array_equal(samples, recorded[start : (page + 1) * P])


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    steps=st.lists(
        st.tuples(st.integers(1, 12), st.integers(0, PAGE_SAMPLES * 2), st.booleans()), min_size=1, max_size=8
    )
)
def test_every_take_over_restores_the_state_stored_before_it(steps: list[tuple[int, int, bool]]) -> None:
    # each step: chunks fed, audio released behind the end (at most two pages kept), a take-over or not
    asyncio.run(take_overs(steps))


async def take_overs(steps: list[tuple[int, int, bool]]) -> None:
    store, _, _ = new_store()
    chunks = chunks_of(noise(100 * 1600), 1600)
    live = LiveStream("s", 0, StreamSession("s", CONFIG, session="0.0"))
    fed = 0
    for count, kept, take_over in steps:
        feed(live, store, chunks[fed : fed + count])
        fed += count
        live.session.buffer.release_to(max(live.session.buffer.base, live.session.buffer.state.audio.end - kept))
        await store.write_header(live)
        if take_over:
            restored = restore(store)
            assert state_fingerprint(restored.session) == state_fingerprint(live.session)
            live = restored


async def test_a_failed_changelog_write_is_raised_and_the_retry_stores_everything() -> None:
    store, streams, audio = new_store()
    live = LiveStream("s", 0, StreamSession("s", CONFIG, session="0.0"))
    audio.fail_next = 1
    feed(live, store, chunks_of(noise(2 * 16_000 + 10), 1600))
    with pytest.raises(ConnectionError):
        await store.write_header(live)
    assert streams.get(0, b"s") is None  # no header names a page that may not be stored
    await store.write_header(live)
    assert state_fingerprint(restore(store).session) == state_fingerprint(live.session)


class ManualAckTable:
    """A table whose changelog acknowledges only when the test says so; `durable` is what a new owner restores."""

    def __init__(self) -> None:
        self.durable: dict[bytes, bytes] = {}
        self.pending: list[tuple[bytes, bytes, asyncio.Future[object]]] = []

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self.durable.get(key)

    def put(self, partition: int, key: bytes, value: bytes, stamp: object = None) -> Awaitable[object]:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.pending.append((key, value, future))
        return future

    def delete(self, partition: int, key: bytes, stamp: object = None) -> Awaitable[object]:
        self.durable.pop(key, None)
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def keys(self, partition: int) -> Iterator[bytes]:
        yield from sorted(self.durable)

    def ack(self, count: int | None = None) -> None:
        """Acknowledge the oldest ``count`` writes still waiting (all by default)."""
        waiting = [entry for entry in self.pending if not entry[2].done()]
        for key, value, future in waiting[:count]:
            self.durable[key] = value
            future.set_result(None)

    @property
    def unacknowledged(self) -> list[bytes]:
        return [key for key, _, future in self.pending if not future.done()]


async def test_the_header_waits_for_pages_that_became_whole_while_it_waited() -> None:
    """The reader applies records while a step stores the header: pages it completes meanwhile are named too."""
    streams, audio = ManualAckTable(), ManualAckTable()
    store = StreamStore(streams, audio, CONFIG)
    live = LiveStream("s", 0, StreamSession("s", CONFIG, session="0.0"))
    chunks = chunks_of(noise(3 * 16_000), 1600)
    feed(live, store, chunks[:15])  # 1.5 s: page 0 is whole, its write is in flight
    writing = asyncio.create_task(store.write_header(live))
    await asyncio.sleep(0)  # the step waits for page 0
    feed(live, store, chunks[15:21])  # 2.1 s: page 1 becomes whole and is written
    audio.ack(1)  # page 0 only
    for _ in range(5):
        await asyncio.sleep(0)
    assert streams.unacknowledged == []  # no header names page 1 while its write may still be lost
    audio.ack()
    for _ in range(5):
        await asyncio.sleep(0)
    streams.ack()
    await writing
    header = store.read(0, "s")
    assert isinstance(header, StreamHeader) and sorted(header.page_crcs) == [0, 1]
    restored = store.restore(0, "s", header)  # from acknowledged records only, as a new owner would
    assert state_fingerprint(restored.session) == state_fingerprint(live.session)


async def test_attempts_count_against_the_stored_header_only() -> None:
    store, _, _ = new_store()
    live = LiveStream("s", 0, StreamSession("s", CONFIG, session="0.0"))
    feed(live, store, chunks_of(noise(16_000), 1600))
    await store.write_header(live)
    await store.mark_attempt(live)()
    await store.mark_attempt(live)()
    assert restore(store).attempts == 2  # two windows started on this header and never finished
    await store.release_attempt(live)()
    assert restore(store).attempts == 1 == live.attempts  # the model returned one of them
    await store.write_header(live)
    assert restore(store).attempts == 0


async def test_end_leaves_only_the_marker() -> None:
    store, streams, audio = new_store()
    live = LiveStream("s", 0, StreamSession("s", CONFIG, session="0.0"))
    feed(live, store, chunks_of(noise(3 * 16_000), 1600))
    await store.write_header(live)
    await store.mark_attempt(live)()
    marker = EndedMarker(last_seq=29, end=48_000, shift=0, session="0.0", ended_ms=1)
    await store.end(live, marker)
    await asyncio.sleep(0)
    assert decode_stream_record(streams.get(0, b"s") or b"") == marker
    assert audio.data[0] == {}
    await store.forget(0, "s")
    assert streams.data[0] == {}


async def test_every_write_carries_the_owner_epoch_and_a_revoked_owner_writes_nothing() -> None:
    streams, audio = MemoryTable(), MemoryTable()
    store = StreamStore(streams, audio, CONFIG, OwnerEpochs())
    epoch = store.next_epoch(0)
    await store.fence(0, epoch)()
    assert epoch == 1 and decode_fence(streams.get(0, FENCE_KEY)) == decode_fence(audio.get(0, FENCE_KEY)) == 1
    live = LiveStream("s", 0, StreamSession("s", CONFIG, session="0.0"), epoch=epoch, input_offset=41)
    feed(live, store, chunks_of(noise(2 * 16_000), 1600))
    await store.write_header(live)
    assert streams.stamps[0][b"s"] == WriteStamp(epoch, 41)
    assert {audio.stamps[0][key] for key in audio.data[0] if key != FENCE_KEY} == {WriteStamp(epoch, 41)}
    header = store.read(0, "s")
    assert isinstance(header, StreamHeader) and (header.epoch, header.input_offset) == (epoch, 41)
    writes = streams.writes + audio.writes
    store.release(0)  # revoked: a reader that was parked, a late attempt count, a step still running
    with pytest.raises(Fenced):
        feed(live, store, chunks_of(noise(16_000, seed=1), 1600, first_seq=20))
    with pytest.raises(Fenced):
        await store.write_header(live)
    with pytest.raises(Fenced):
        await store.mark_attempt(live)()
    assert streams.writes + audio.writes == writes
    assert store.next_epoch(0) == 2  # the next owner fences this one off
