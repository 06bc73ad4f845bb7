from __future__ import annotations

import itertools

import numpy as np
import orjson
import pytest

from stream_app.inference.types import Word
from stream_app.streaming.buffer import StreamBuffer
from stream_app.streaming.exceptions import StateDecodeError
from stream_app.streaming.merger import SegmentMerger
from stream_app.streaming.state import MergerState, decode_merger_state, encode_merger_state
from stream_app.streaming.windowing import Window, WindowingConfig
from stream_app.wire.chunk import AudioChunk

CONFIG = WindowingConfig(window=1000, overlap=200, interim=300, max_reorder_chunks=8)


def chunks(values: np.ndarray, size: int) -> list[AudioChunk]:
    out = []
    for seq, offset in enumerate(range(0, len(values), size)):
        part = values[offset : offset + size].astype(np.float32)
        out.append(AudioChunk("s", seq, offset, part, end_of_stream=offset + size >= len(values)))
    return out


def windows_of(buffer: StreamBuffer, items: list[AudioChunk]) -> list[tuple[int, int, bytes, bool, bool]]:
    out = []
    for c in items:
        buffer.apply(c)
        out += [
            (w.index, w.start_sample, w.samples.tobytes(), w.is_last, w.is_interim) for w in buffer.take_ready_windows()
        ]
    return out


@pytest.mark.parametrize("encoding", ["f32", "s16"])
def test_buffer_resumed_from_bytes_at_any_chunk_gives_the_same_windows(encoding: str) -> None:
    rng = np.random.default_rng(1)
    audio = (rng.integers(-32768, 32767, size=5000) / 32768.0).astype(np.float32)  # exact in int16
    items = chunks(audio, 170)
    items[3], items[4] = items[4], items[3]  # one reordered pair: a held chunk is in some states
    reference = windows_of(StreamBuffer(CONFIG), items)
    for cut in range(1, len(items)):
        buffer = StreamBuffer(CONFIG)
        before = windows_of(buffer, items[:cut])
        resumed = StreamBuffer.from_bytes(buffer.to_bytes(encoding))  # type: ignore[arg-type]
        assert resumed.to_bytes(encoding) == buffer.to_bytes(encoding)  # type: ignore[arg-type]
        assert before + windows_of(resumed, items[cut:]) == reference


def test_buffer_state_is_raw_pcm_plus_a_small_header() -> None:
    buffer = StreamBuffer(CONFIG)
    buffer.apply(AudioChunk("s", 0, 0, np.full(900, 0.25, dtype=np.float32)))
    buffer.apply(AudioChunk("s", 2, 1000, np.full(50, 0.5, dtype=np.float32)))  # held
    f32, s16 = buffer.to_bytes("f32"), buffer.to_bytes("s16")
    assert 950 * 4 < len(f32) < 950 * 4 + 400
    assert 950 * 2 < len(s16) < 950 * 2 + 400
    resumed = StreamBuffer.from_bytes(f32)
    assert resumed.pending_count == 1 and resumed.buffered_samples == 900


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"XX\x02\x00\x00\x00\x02{}",
        b"SB\x09\x00\x00\x00\x02{}",
        b"SB\x02\x00\x00\x00\x02{}",
        b"SB\x01\x00\x00\x00\x02{}",  # a known version, an empty header
    ],
)
def test_foreign_or_broken_buffer_state_is_rejected(data: bytes) -> None:
    with pytest.raises(StateDecodeError):
        StreamBuffer.from_bytes(data)


def paused_speech() -> np.ndarray:
    """Loud bursts with pauses, some long enough to cut windows at."""
    rng = np.random.default_rng(4)
    parts = []
    for _ in range(30):
        n = int(rng.integers(3000, 20000))
        parts.append((0.3 * np.sin(np.arange(n) * 0.2)).astype(np.float32))
        parts.append(np.zeros(int(rng.integers(800, 9000)), dtype=np.float32))
    return np.concatenate(parts)


@pytest.mark.parametrize("encoding", ["f32", "s16"])
def test_pause_cut_buffer_resumed_from_bytes_keeps_its_next_start_and_speech_level(encoding: str) -> None:
    config = WindowingConfig.from_seconds(3.0, 1.0, 0.5, pause_search=1.2)
    audio = paused_speech()
    items = chunks(audio, 4000)
    reference = windows_of(StreamBuffer(config), items)
    starts = sorted({w[1] for w in reference})
    assert any(b - a not in (0, config.hop) for a, b in itertools.pairwise(starts))  # off the grid
    for cut in range(1, len(items), 7):
        buffer = StreamBuffer(config)
        before = windows_of(buffer, items[:cut])
        data = buffer.to_bytes(encoding)  # type: ignore[arg-type]
        resumed = StreamBuffer.from_bytes(data)
        assert resumed.to_bytes(encoding) == data  # type: ignore[arg-type]
        assert resumed.config == config
        assert (resumed.next_start, resumed.speech_level) == (buffer.next_start, buffer.speech_level)
        after = windows_of(resumed, items[cut:])
        if encoding == "f32":
            assert before + after == reference


def as_version_1(data: bytes) -> bytes:
    """Rewrite a fixed-grid state the way the version 1 encoder wrote it (no start, level or pause fields)."""
    head_len = int.from_bytes(data[3:7], "big")
    header = orjson.loads(data[7 : 7 + head_len])
    header["cfg"] = header["cfg"][:6]
    del header["start"], header["level"]
    head = orjson.dumps(header)
    return b"SB\x01" + len(head).to_bytes(4, "big") + head + data[7 + head_len :]


def test_version_1_state_resumes_on_its_fixed_grid() -> None:
    rng = np.random.default_rng(2)
    audio = (rng.integers(-32768, 32767, size=5000) / 32768.0).astype(np.float32)
    items = chunks(audio, 170)
    reference = windows_of(StreamBuffer(CONFIG), items)
    for cut in (8, 13, 25):
        buffer = StreamBuffer(CONFIG)
        before = windows_of(buffer, items[:cut])
        resumed = StreamBuffer.from_bytes(as_version_1(buffer.to_bytes()))
        assert resumed.next_start == buffer.next_start > 0 and resumed.config == CONFIG
        assert before + windows_of(resumed, items[cut:]) == reference


def test_truncated_pcm_is_rejected() -> None:
    buffer = StreamBuffer(CONFIG)
    buffer.apply(AudioChunk("s", 0, 0, np.ones(100, dtype=np.float32)))
    with pytest.raises(StateDecodeError):
        StreamBuffer.from_bytes(buffer.to_bytes()[:-4])


def test_merger_state_round_trip_keeps_every_field() -> None:
    state = MergerState(
        stream_id="room:1",
        next_index=7,
        revision=2,
        next_window=9,
        committed_until=12.5,
        tail=["ask", "not"],
        hypothesis=[Word(12.6, 12.9, " what", 0.9)],
        interim_text="what",
        ended=False,
        model="tiny.en",
        precision="int8",
    )
    assert decode_merger_state(encode_merger_state(state)) == state


def test_merger_from_bytes_rejects_a_buffer_state() -> None:
    buffer = StreamBuffer(CONFIG)
    with pytest.raises(StateDecodeError):
        SegmentMerger.from_bytes(buffer.to_bytes())


def test_window_job_carries_time_and_priority() -> None:
    window = Window(2, 32_000, np.zeros(16_000, dtype=np.float32), 48_000, is_interim=True)
    job = window.job("s", created_at=1.0)
    assert (job.window_index, job.start, job.priority.name) == (2, 2.0, "INTERIM")
