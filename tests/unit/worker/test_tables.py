import numpy as np
import pytest

from stream_app.streaming import MergePolicy, StreamSession, WindowingConfig
from stream_app.wire.chunk import AudioChunk
from stream_app.worker.processor import Ended
from stream_app.worker.tables import PAGE_SAMPLES, TableSessionStore, page_key

RATE = 16_000


def chunks(stream_id: str, seconds: float, chunk_s: float = 0.25, seed: int = 1) -> list[AudioChunk]:
    rng = np.random.default_rng(seed)
    audio = (rng.standard_normal(int(seconds * RATE)) * 0.1).astype(np.float32)
    step = int(chunk_s * RATE)
    n = -(-audio.shape[0] // step)
    return [
        AudioChunk(stream_id, i, i * step, audio[i * step : (i + 1) * step], end_of_stream=i == n - 1)
        for i in range(n)
    ]


def new_store() -> tuple[TableSessionStore, dict[bytes, bytes], dict[bytes, bytes], dict[bytes, bytes]]:
    buffers: dict[bytes, bytes] = {}
    audio: dict[bytes, bytes] = {}
    mergers: dict[bytes, bytes] = {}
    return TableSessionStore(buffers, audio, mergers, MergePolicy()), buffers, audio, mergers


def test_state_round_trips_through_pages() -> None:
    store, _, audio, _ = new_store()
    config = WindowingConfig.from_seconds(30.0, 2.0, 0.0, buffer_size=60.0)
    session = StreamSession("s", config)
    for chunk in chunks("s", 20.0)[:-1]:
        session.feed(chunk)
        store.save(session)
    restored = store.load("s")
    assert isinstance(restored, StreamSession)
    assert restored.buffer.to_bytes() == session.buffer.to_bytes()
    assert restored.merger.to_bytes() == session.merger.to_bytes()
    assert max(len(v) for v in audio.values()) <= PAGE_SAMPLES * 4 + 8  # no record near Kafka's limit


def test_each_save_writes_only_the_pages_it_extends() -> None:
    store, _, audio, _ = new_store()
    config = WindowingConfig.from_seconds(30.0, 2.0, 0.0, buffer_size=60.0)
    session = StreamSession("s", config)
    parts = chunks("s", 10.0)
    for chunk in parts[:-2]:
        session.feed(chunk)
        store.save(session)
    before = dict(audio)
    session.feed(parts[-2])
    store.save(session)
    changed = [k for k in audio if before.get(k) != audio[k]]
    assert len(changed) == 1  # the partial last page only


def test_pages_no_window_needs_are_deleted() -> None:
    store, _, audio, _ = new_store()
    config = WindowingConfig.from_seconds(5.0, 1.0, 0.0, buffer_size=60.0)
    session = StreamSession("s", config)
    for chunk in chunks("s", 40.0)[:-1]:
        session.feed(chunk)
        store.save(session)
    _, base, samples = session.buffer.to_parts()
    live_pages = set(range(base // PAGE_SAMPLES, -(-(base + samples.shape[0]) // PAGE_SAMPLES)))
    assert {int.from_bytes(k.split(b"\0", 1)[1], "big") for k in audio} == live_pages
    assert len(audio) <= 8  # bounded by the window, not by the stream's length


def test_end_leaves_a_marker_and_forget_removes_everything() -> None:
    store, buffers, audio, mergers = new_store()
    session = StreamSession("s", WindowingConfig.from_seconds(5.0, 1.0, 0.0, buffer_size=60.0))
    for chunk in chunks("s", 3.0)[:-1]:
        session.feed(chunk)
    store.save(session)
    store.end("s", last_seq=11)
    assert store.load("s") == Ended(11)
    assert not buffers and not audio
    assert store.stream_ids() == ["s"]
    store.forget("s")
    assert not mergers and store.load("s") is None


def test_a_missing_page_is_a_clear_error() -> None:
    store, _, audio, _ = new_store()
    session = StreamSession("s", WindowingConfig.from_seconds(5.0, 1.0, 0.0, buffer_size=60.0))
    for chunk in chunks("s", 3.0)[:-1]:
        session.feed(chunk)
    store.save(session)
    del audio[page_key("s", 0)]
    with pytest.raises(Exception, match="page 0 is missing"):
        store.load("s")
