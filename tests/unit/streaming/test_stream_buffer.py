from __future__ import annotations

import numpy as np
import numpy.typing as npt

from stream_app.streaming.buffer import StreamBuffer
from stream_app.streaming.config import LiveConfig
from stream_app.wire.chunk import AudioChunk

CONFIG = LiveConfig(max_reorder_chunks=4, max_gap_fill=100)


def ramp(n: int, start: int = 0) -> npt.NDArray[np.float32]:
    return np.arange(start + 1, start + n + 1, dtype=np.float32)


def chunk(seq: int, offset: int, n: int, *, eos: bool = False) -> AudioChunk:
    return AudioChunk("s", seq, offset, ramp(n, offset), end_of_stream=eos)


def test_chunks_are_put_in_order_and_duplicates_change_nothing() -> None:
    buffer = StreamBuffer(CONFIG)
    assert buffer.apply(chunk(1, 10, 10)).held == (1,)
    assert buffer.apply(chunk(0, 0, 10)).accepted == (0, 1)
    assert buffer.apply(chunk(1, 10, 10)).duplicates == (1,)
    assert buffer.slice(0, 20).tolist() == ramp(20).tolist()


def test_a_hole_declared_lost_is_a_gap_and_its_late_chunk_is_reported_not_dropped() -> None:
    buffer = StreamBuffer(CONFIG)
    buffer.apply(chunk(0, 0, 10))
    for seq in range(2, 7):  # seq 1 never comes: the fifth held chunk passes max_reorder_chunks (4)
        applied = buffer.apply(chunk(seq, seq * 10, 10))
    assert applied.accepted == (2, 3, 4, 5, 6)
    (loss,) = applied.losses
    assert (loss.start, loss.end, loss.reason) == (10, 20, "lost_chunks")
    assert "1..1" in loss.detail
    assert buffer.slice(10, 20).tolist() == [0.0] * 10  # silence where the chunk would be
    late = buffer.apply(chunk(1, 10, 10))
    assert late.late_lost == (1,) and not late.duplicates


def test_a_hole_of_any_size_is_remembered_as_one_run_so_a_far_ahead_seq_costs_no_memory() -> None:
    buffer = StreamBuffer(CONFIG)
    buffer.apply(chunk(0, 0, 10))
    far = 10**15  # a recorder's (or a forger's) seq far ahead: building the hole seq by seq ran out of memory
    assert buffer.apply(chunk(far, 10, 10, eos=True)).held == (far,)
    closed = buffer.close()
    assert closed.accepted == (far,) and buffer.ended
    assert buffer.lost_runs == [(1, far)]
    assert [loss.detail for loss in closed.losses] == [f"chunks 1..{far - 1} never arrived"]


def test_every_late_chunk_of_a_long_hole_is_late_not_a_duplicate() -> None:
    buffer = StreamBuffer(CONFIG)
    buffer.apply(chunk(0, 0, 10))
    for seq in range(400, 405):  # 1..399 missing: more than the 256 single numbers remembered before
        buffer.apply(chunk(seq, seq * 10, 10))
    assert buffer.lost_runs == [(1, 400)]
    outcomes = [buffer.apply(chunk(seq, seq * 10, 10)) for seq in (1, 143, 144, 399, 200)]
    assert [o.late_lost for o in outcomes] == [(1,), (143,), (144,), (399,), (200,)]
    assert not any(o.duplicates for o in outcomes)
    assert buffer.lost_runs == [(2, 143), (145, 200), (201, 399)]
    assert buffer.apply(chunk(143, 1430, 10)).duplicates == (143,)  # once late, again a duplicate


def test_an_end_of_stream_held_behind_a_hole_waits_for_it() -> None:
    buffer = StreamBuffer(CONFIG)
    buffer.apply(chunk(0, 0, 10))
    assert buffer.apply(chunk(2, 20, 10, eos=True)).held == (2,)
    assert buffer.eos_held and not buffer.ended
    applied = buffer.apply(chunk(1, 10, 10))
    assert applied.accepted == (1, 2) and buffer.ended and not applied.losses


def test_closing_a_stream_stuck_behind_a_hole_declares_it_lost() -> None:
    buffer = StreamBuffer(CONFIG)
    buffer.apply(chunk(0, 0, 10))
    buffer.apply(chunk(2, 20, 10, eos=True))
    closed = buffer.close()
    assert closed.accepted == (2,) and buffer.ended
    assert [loss.reason for loss in closed.losses] == ["lost_chunks"]


def test_a_jump_longer_than_the_fill_is_skipped_and_reported() -> None:
    buffer = StreamBuffer(CONFIG)
    buffer.apply(chunk(0, 0, 10))
    applied = buffer.apply(chunk(1, 510, 10))
    assert [(x.start, x.end, x.reason) for x in applied.losses] == [(110, 110, "skipped_audio")]
    assert buffer.shift == 400 and buffer.stream_end == 120


def test_the_cap_drops_the_oldest_audio_and_reports_what_the_model_never_heard() -> None:
    config = LiveConfig(buffer_cap=0)  # the effective cap is a whole window and its lead
    cap = config.effective_cap
    buffer = StreamBuffer(config)
    buffer.apply(AudioChunk("s", 0, 0, np.ones(cap, np.float32)))
    buffer.heard(1000)
    applied = buffer.apply(AudioChunk("s", 1, cap, np.ones(3000, np.float32)))
    assert applied.dropped_samples == 3000
    (loss,) = applied.losses
    assert (loss.start, loss.end, loss.reason) == (1000, 3000, "buffer_overflow")


def test_a_resumed_session_starts_its_timeline_at_its_first_chunk() -> None:
    buffer = StreamBuffer(CONFIG, first_seq=5, resume_at=1000)
    buffer.apply(chunk(5, 4000, 10))
    assert buffer.base == 4000 and buffer.stream_end == 4010
