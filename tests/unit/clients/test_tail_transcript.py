from __future__ import annotations

from stream_app.clients.transcript import TranscriptAssembler, format_segment_line, join_text
from stream_app.testing.segments import make_segment
from stream_app.wire.segment import TranscriptSegment


def _seg(
    index: int, text: str, *, final: bool = True, revision: int = 0, eos: bool = False, stream: str = "s"
) -> TranscriptSegment:
    return make_segment(stream, index, text, final=final, revision=revision, eos=eos, seconds=5.0, speech=4.0)


def test_final_text_from_replayed_and_revised_segments() -> None:
    assembler = TranscriptAssembler("s")
    arrivals = [
        _seg(0, " And so my", final=False, revision=0),
        _seg(0, " And so my fellow", final=False, revision=1),
        _seg(0, " And so my fellow Americans,", revision=2),
        _seg(0, " And so my", final=False, revision=0),  # replayed after a rebalance
        _seg(1, " ask not", final=False),
        _seg(0, " And so my fellow Americans,", revision=2),  # duplicate final
        _seg(1, " ask not what your country can do for you.", revision=1),
        _seg(9, "x", stream="other"),
    ]
    changed = [assembler.add(s) for s in arrivals]
    assert changed == [True, True, True, False, True, False, True, False]
    assert not assembler.ended
    assert assembler.add(_seg(2, "", eos=True))
    result = assembler.result()
    assert result.complete
    assert result.text == "And so my fellow Americans, ask not what your country can do for you."
    assert [s.index for s in result.segments] == [0, 1, 2]


def test_interims_do_not_enter_the_final_text() -> None:
    assembler = TranscriptAssembler("s")
    assembler.add(_seg(0, " hello", revision=0))
    assembler.add(_seg(1, " wor", final=False))
    assert assembler.result().text == "hello"
    assert [s.text for s in assembler.current_segments()] == [" hello", " wor"]
    assert not assembler.result().complete


def test_join_and_lines() -> None:
    assert join_text((_seg(0, " a "), _seg(1, ""), _seg(2, "b"))) == "a b"
    assert format_segment_line(_seg(1, " ask not")) == "s [    5.00 -     9.00] ask not"
    interim = format_segment_line(_seg(1, " ask", final=False, revision=3))
    assert "~ ask" in interim and "interim r3" in interim
    assert format_segment_line(_seg(2, "", eos=True)).endswith("<end of stream>")


def test_an_interim_left_by_a_session_that_is_over_is_not_what_is_being_said() -> None:
    import dataclasses

    from stream_app.wire.segment import Gap

    assembler = TranscriptAssembler("a")
    assembler.add(dataclasses.replace(make_segment("a", 0, "kept"), session="0.0"))
    assembler.add(dataclasses.replace(make_segment("a", 1, "was being said", final=False), session="0.0"))
    assert [s.text.strip() for s in assembler.current_segments()] == ["kept", "was being said"]
    lost = make_segment("a", 0, "", eos=True, gaps=(Gap(8.0, 8.0, "state_lost"),))
    assembler.add(dataclasses.replace(lost, session="0.25", segment_id="a:0.25:0"))
    assert [(s.session, s.is_final) for s in assembler.current_segments()] == [("0.0", True), ("0.25", True)]
    assert assembler.result().complete
