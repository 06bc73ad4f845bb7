"""The caption board: one latest version per segment, replays ignored, a snapshot for a page that connects."""

from __future__ import annotations

from stream_app.captions.board import CaptionBoard
from stream_app.testing.segments import make_segment
from stream_app.wire.segment import Gap


def test_updates_follow_the_revision_rule_and_replays_send_nothing() -> None:
    board = CaptionBoard()
    interim = make_segment("a", 0, "And so", final=False, revision=0)
    final = make_segment("a", 0, "And so my fellow.", revision=1)
    assert board.apply(interim) is not None
    update = board.apply(final)
    assert update is not None and update["is_final"] and update["text"] == "And so my fellow."
    assert board.apply(interim) is None and board.apply(final) is None  # a failover's replay
    assert [u["segment_id"] for u in board.snapshot()] == ["a:0"]


def test_the_snapshot_keeps_stream_order_and_marks_gaps() -> None:
    board = CaptionBoard()
    board.apply(make_segment("b", 1, "later"))
    board.apply(make_segment("a", 0, "first", gaps=(Gap(0.5, 1.0, "late_chunks"),)))
    board.apply(make_segment("b", 0, "earlier"))
    snapshot = board.snapshot()
    assert [(u["stream_id"], u["text"]) for u in snapshot] == [("b", "earlier"), ("b", "later"), ("a", "first")]
    assert snapshot[2]["gaps"] == [{"start": 0.5, "end": 1.0, "reason": "late_chunks"}]


def test_memory_is_bounded_and_old_replays_stay_out() -> None:
    board = CaptionBoard(max_streams=2, max_segments=3)
    for index in range(5):
        board.apply(make_segment("a", index, f"w{index}"))
    assert [u["text"] for u in board.snapshot()] == ["w2", "w3", "w4"]
    assert board.apply(make_segment("a", 0, "w0", revision=9)) is None  # older than those kept: not shown again
    board.apply(make_segment("b", 0, "x"))
    board.apply(make_segment("c", 0, "y"))
    assert {u["stream_id"] for u in board.snapshot()} == {"b", "c"}  # a, idle longest, let go


def test_an_interim_of_a_session_that_is_over_is_not_shown_to_a_page_that_connects() -> None:
    """A state reset ends a session without a final for its interim; the new session's records say so."""
    import dataclasses

    board = CaptionBoard()
    board.apply(dataclasses.replace(make_segment("a", 0, "kept"), session="0.0"))
    board.apply(dataclasses.replace(make_segment("a", 1, "was being said", final=False), session="0.0"))
    lost = make_segment("a", 0, "", gaps=(Gap(8.0, 8.0, "state_lost"),))
    board.apply(dataclasses.replace(lost, session="0.25", segment_id="a:0.25:0"))
    assert [(u["text"], u["is_final"]) for u in board.snapshot()] == [("kept", True), ("", True)]
