from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from stream_app.config.loader import load_settings
from stream_app.streaming.buffer import StreamBuffer
from stream_app.streaming.exceptions import WindowingConfigError
from stream_app.streaming.session import StreamSession
from stream_app.streaming.windowing import Window, WindowingConfig
from stream_app.testing.tables import state_fingerprint
from stream_app.wire.chunk import AudioChunk
from stream_app.worker.profile import windowing_for

W10_O2 = WindowingConfig(window=10, overlap=2, max_reorder_chunks=4)


def ramp(n: int, start: int = 0) -> npt.NDArray[np.float32]:
    """Samples whose value is their stream position, so every slice is recognisable."""
    return np.arange(start + 1, start + n + 1, dtype=np.float32)


def chunk(
    seq: int, offset: int, n: int, *, eos: bool = False, values: npt.NDArray[np.float32] | None = None
) -> AudioChunk:
    samples = ramp(n, offset) if values is None else values
    return AudioChunk(stream_id="s", seq=seq, offset=offset, samples=samples, end_of_stream=eos)


def chunks_for(sizes: list[int], *, eos_separate: bool = False) -> list[AudioChunk]:
    out, offset = [], 0
    for seq, n in enumerate(sizes):
        last = seq == len(sizes) - 1
        out.append(chunk(seq, offset, n, eos=last and not eos_separate))
        offset += n
    if eos_separate:
        out.append(chunk(len(sizes), offset, 0, eos=True))
    return out


def run(buffer: StreamBuffer, chunks: list[AudioChunk]) -> list[Window]:
    windows: list[Window] = []
    for c in chunks:
        buffer.apply(c)
        windows.extend(buffer.take_ready_windows())
    return windows


def fingerprint(buffer: StreamBuffer) -> bytes:
    return state_fingerprint(StreamSession("s", buffer.config, buffer=buffer))


def summary(windows: list[Window]) -> list[tuple[int, int, list[float], int, bool, bool]]:
    return [
        (w.index, w.start_sample, w.samples.tolist(), w.stable_until_sample, w.is_last, w.is_interim) for w in windows
    ]


def test_windows_follow_the_grid_and_the_last_one_is_partial() -> None:
    windows = run(StreamBuffer(W10_O2), chunks_for([7, 7, 7, 7, 7]))  # 35 samples
    assert [(w.index, w.start_sample, w.end_sample) for w in windows] == [
        (0, 0, 10),
        (1, 8, 18),
        (2, 16, 26),
        (3, 24, 34),
        (4, 32, 35),
    ]
    assert [w.is_last for w in windows] == [False, False, False, False, True]
    assert windows[1].samples.tolist() == ramp(10, 8).tolist()
    assert windows[1].stable_until_sample == 16  # the next window's start
    assert windows[-1].stable_until_sample == 35


def test_stream_ending_inside_the_last_overlap_gets_an_empty_last_window() -> None:
    windows = run(StreamBuffer(W10_O2), chunks_for([18]))
    assert [(w.start_sample, w.end_sample, w.is_last) for w in windows] == [
        (0, 10, False),
        (8, 18, False),
        (18, 18, True),
    ]
    assert windows[-1].is_empty and windows[-1].stable_until_sample == 18


def test_empty_stream_gives_one_empty_last_window() -> None:
    windows = run(StreamBuffer(W10_O2), [chunk(0, 0, 0, eos=True)])
    assert len(windows) == 1 and windows[0].is_last and windows[0].is_empty


@pytest.mark.parametrize("seed", range(8))
def test_windows_do_not_depend_on_chunking_or_on_how_end_of_stream_arrives(seed: int) -> None:
    rng = np.random.default_rng(seed)
    total = 97
    reference = summary(run(StreamBuffer(W10_O2), chunks_for([total])))
    cuts = sorted(rng.choice(np.arange(1, total), size=int(rng.integers(1, 30)), replace=False).tolist())
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
    assert summary(run(StreamBuffer(W10_O2), chunks_for(sizes))) == reference
    assert summary(run(StreamBuffer(W10_O2), chunks_for(sizes, eos_separate=True))) == reference


def test_memory_is_released_as_windows_are_taken() -> None:
    buffer = StreamBuffer(W10_O2)
    high = 0
    for c in chunks_for([3] * 400)[:-1]:
        buffer.apply(c)
        buffer.take_ready_windows()
        high = max(high, buffer.buffered_samples)
    assert high <= 10 + 3
    assert buffer.buffered_samples < 10


def test_duplicate_is_dropped_and_replay_leaves_state_unchanged() -> None:
    buffer = StreamBuffer(W10_O2)
    first = chunk(0, 0, 6)
    assert buffer.apply(first).accepted == (0,)
    state = fingerprint(buffer)
    again = buffer.apply(first)
    assert again.duplicates == (0,) and again.accepted == ()
    assert fingerprint(buffer) == state


def test_duplicate_of_a_held_chunk_is_dropped() -> None:
    buffer = StreamBuffer(W10_O2)
    assert buffer.apply(chunk(1, 6, 6)).held == (1,)
    state = fingerprint(buffer)
    assert buffer.apply(chunk(1, 6, 6)).duplicates == (1,)
    assert fingerprint(buffer) == state


def test_out_of_order_chunks_are_held_until_the_gap_fills() -> None:
    buffer = StreamBuffer(W10_O2)
    c0, c1, c2 = chunk(0, 0, 6), chunk(1, 6, 6), chunk(2, 12, 6)
    assert buffer.apply(c2).held == (2,)
    assert buffer.apply(c1).held == (1,)
    assert buffer.take_ready_windows() == []
    assert buffer.apply(c0).accepted == (0, 1, 2)
    in_order = run(StreamBuffer(W10_O2), [c0, c1, c2])
    assert summary(buffer.take_ready_windows()) == summary(in_order)


def test_full_reorder_hold_declares_the_missing_chunk_lost_and_fills_silence() -> None:
    buffer = StreamBuffer(WindowingConfig(window=10, overlap=2, max_reorder_chunks=2))
    buffer.apply(chunk(0, 0, 5))
    assert buffer.apply(chunk(2, 10, 5)).held == (2,)
    assert buffer.apply(chunk(3, 15, 5)).held == (3,)
    result = buffer.apply(chunk(4, 20, 5))
    assert result.accepted == (2, 3, 4)
    (gap,) = result.gaps
    assert (gap.first_lost_seq, gap.lost_count, gap.position, gap.silence_samples, gap.skipped_samples) == (
        1,
        1,
        5,
        5,
        0,
    )
    first = buffer.take_ready_windows()[0]
    assert first.samples.tolist() == [*ramp(5).tolist(), 0, 0, 0, 0, 0]
    assert buffer.apply(chunk(1, 5, 5)).duplicates == (1,)  # too late: declared lost


def test_end_of_stream_behind_a_hole_declares_it_lost_at_once() -> None:
    buffer = StreamBuffer(W10_O2)
    buffer.apply(chunk(0, 0, 4))
    result = buffer.apply(chunk(2, 8, 4, eos=True))
    assert result.accepted == (2,)
    assert result.gaps[0].first_lost_seq == 1 and result.gaps[0].silence_samples == 4
    assert buffer.ended
    windows = buffer.take_ready_windows()
    assert windows[-1].is_last and windows[-1].end_sample == 12


def test_lost_sequence_without_offset_jump_is_reported_without_silence() -> None:
    buffer = StreamBuffer(WindowingConfig(window=10, overlap=2, max_reorder_chunks=0))
    buffer.apply(chunk(0, 0, 4))
    result = buffer.apply(chunk(2, 4, 4))
    assert result.accepted == (2,)
    assert (result.gaps[0].first_lost_seq, result.gaps[0].silence_samples) == (1, 0)


def test_offset_jump_is_filled_with_silence_up_to_the_cap_and_later_offsets_follow() -> None:
    buffer = StreamBuffer(WindowingConfig(window=10, overlap=2, max_gap_fill=3))
    buffer.apply(chunk(0, 0, 4))
    result = buffer.apply(chunk(1, 12, 4))
    (gap,) = result.gaps
    assert (gap.first_lost_seq, gap.silence_samples, gap.skipped_samples) == (None, 3, 5)
    assert buffer.shift == 5 and buffer.stream_end == 11
    assert buffer.apply(chunk(2, 16, 4)).gaps == ()  # contiguous in the recorder's offsets
    assert buffer.stream_end == 15


def test_overlapping_offset_drops_the_repeated_samples() -> None:
    buffer = StreamBuffer(W10_O2)
    buffer.apply(chunk(0, 0, 6))
    result = buffer.apply(chunk(1, 3, 6))  # samples 3..8 of which 3..5 are already here
    assert result.overlap_samples == 3
    assert buffer.stream_end == 9
    buffer.apply(chunk(2, 9, 1))
    assert buffer.take_ready_windows()[0].samples.tolist() == ramp(10).tolist()


def test_chunk_entirely_in_the_past_adds_nothing() -> None:
    buffer = StreamBuffer(W10_O2)
    buffer.apply(chunk(0, 0, 6))
    assert buffer.apply(chunk(1, 0, 4)).overlap_samples == 4
    assert buffer.stream_end == 6


def test_buffer_cap_drops_oldest_whole_windows_when_windows_are_not_taken() -> None:
    config = WindowingConfig(window=10, overlap=2, buffer_cap=20)
    buffer = StreamBuffer(config)
    dropped = 0
    for c in chunks_for([5] * 12)[:-1]:
        dropped += buffer.apply(c).dropped_samples
        assert buffer.buffered_samples <= 20
    assert dropped > 0
    windows = buffer.take_ready_windows()
    assert windows[0].start_sample == dropped  # whole windows dropped: the grid stays aligned
    assert windows[0].start_sample % config.hop == 0
    assert windows[0].samples.tolist() == ramp(10, windows[0].start_sample).tolist()


def test_cap_is_raised_to_fit_a_window_and_a_hop() -> None:
    assert WindowingConfig(window=10, overlap=2, buffer_cap=1).effective_cap == 18


def test_interim_previews_come_every_step_and_leave_finals_unchanged() -> None:
    with_interim = WindowingConfig(window=10, overlap=2, interim=3)
    windows = run(StreamBuffer(with_interim), chunks_for([1] * 30))
    previews = [(w.index, w.start_sample, w.end_sample) for w in windows if w.is_interim]
    assert previews == [(0, 0, 3), (0, 0, 6), (0, 0, 9), (1, 8, 13), (1, 8, 16), (2, 16, 21), (2, 16, 24), (3, 24, 29)]
    assert all(w.stable_until_sample == w.start_sample for w in windows if w.is_interim)
    finals = [w for w in windows if not w.is_interim]
    assert summary(finals) == summary(run(StreamBuffer(W10_O2), chunks_for([1] * 30)))


def test_interim_positions_reached_at_once_give_one_preview_of_the_latest() -> None:
    buffer = StreamBuffer(WindowingConfig(window=10, overlap=2, interim=3))
    buffer.apply(chunk(0, 0, 7))
    (preview,) = buffer.take_ready_windows()
    assert preview.is_interim and preview.end_sample == 6
    assert buffer.take_ready_windows() == []


def test_chunks_after_end_of_stream_are_late() -> None:
    buffer = StreamBuffer(W10_O2)
    buffer.apply(chunk(0, 0, 4, eos=True))
    assert buffer.apply(chunk(1, 4, 4)).late == (1,)
    assert buffer.apply(chunk(0, 0, 4)).duplicates == (0,)


def test_flush_applies_held_chunks_and_returns_the_last_window() -> None:
    buffer = StreamBuffer(W10_O2)
    buffer.apply(chunk(0, 0, 12))
    buffer.take_ready_windows()
    buffer.apply(chunk(2, 16, 2))
    windows = buffer.flush()
    assert [(w.start_sample, w.end_sample, w.is_last) for w in windows] == [(8, 18, False), (18, 18, True)]
    assert windows[0].samples.tolist() == [*ramp(4, 8).tolist(), 0, 0, 0, 0, *ramp(2, 16).tolist()]  # seq 1 lost
    assert buffer.finished and buffer.flush() == []


def test_config_rejects_impossible_grids_and_reads_profiles() -> None:
    with pytest.raises(WindowingConfigError):
        WindowingConfig(window=10, overlap=10)
    with pytest.raises(WindowingConfigError):
        WindowingConfig(window=0, overlap=0)
    live = windowing_for(load_settings(env={}))
    assert (live.window, live.overlap, live.interim, live.interim_min) == (320_000, 16_000, 16_000, 16_000)
    settings = load_settings(env={})
    assert live.pause_search == round(settings.streaming.pause_search * settings.window_seconds * 16_000) > 0
    assert (live.min_pause, live.pause_margin, live.pause_lead) == (3200, 1600, 3200)


def speechlike(n: int) -> npt.NDArray[np.float32]:
    return (0.3 * np.sin(np.arange(n) * 0.05)).astype(np.float32)


def test_an_utterance_ended_by_a_pause_is_cut_before_the_window_is_full() -> None:
    config = WindowingConfig.from_seconds(10.0, 1.0, utterance_pause=0.4, min_utterance=1.0, pause_search=4.0)
    audio = np.concatenate([speechlike(32_000), np.zeros(8_000, np.float32), speechlike(32_000)])
    windows = run(
        StreamBuffer(config),
        [chunk(i, o, 1600, values=audio[o : o + 1600]) for i, o in enumerate(range(0, 72_000, 1600))],
    )
    assert len(windows) == 1 and not windows[0].is_last
    cut = 32_000 + 3_200  # the middle of the first 0.4 s of the pause
    assert windows[0].stable_until_sample == cut and windows[0].end_sample == cut + config.pause_margin


def test_windows_start_with_left_context_of_committed_audio() -> None:
    config = WindowingConfig(window=10, overlap=2, left_context=3)
    windows = run(StreamBuffer(config), chunks_for([7, 7, 7, 7]))
    assert [(w.start_sample, w.stable_until_sample, w.end_sample) for w in windows] == [
        (0, 8, 10),  # nothing before the first window
        (5, 16, 18),  # the next one starts 3 samples before its own start (8)
        (13, 24, 26),
        (21, 28, 28),
    ]
    assert windows[1].samples.tolist() == ramp(13, 5).tolist()


def test_previews_are_left_out_when_the_worker_is_behind_but_finals_are_not() -> None:
    config = WindowingConfig(window=10, overlap=2, interim=3)
    buffer = StreamBuffer(config)
    buffer.apply(chunk(0, 0, 7))
    assert buffer.has_ready_windows() and not buffer.has_ready_windows(previews=False)
    assert buffer.take_ready_windows(previews=False) == []
    buffer.apply(chunk(1, 7, 7))  # the first window is full now
    assert buffer.has_ready_windows(previews=False)
    windows = buffer.take_ready_windows(previews=False)
    assert [(w.index, w.is_interim) for w in windows] == [(0, False)]
    assert [w.is_interim for w in buffer.take_ready_windows()] == [True]  # the preview of window 1, once allowed


def test_a_limit_hands_out_the_ready_windows_one_at_a_time_and_in_the_same_order() -> None:
    all_at_once = StreamBuffer(W10_O2)
    expected = run(all_at_once, chunks_for([37]))
    assert len(expected) > 2  # several windows ready at once
    limited = StreamBuffer(W10_O2)
    limited.apply(chunks_for([37])[0])
    taken: list[Window] = []
    while batch := limited.take_ready_windows(limit=1):
        assert len(batch) == 1
        taken += batch
    assert summary(taken) == summary(expected)
