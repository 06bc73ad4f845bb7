from __future__ import annotations

import numpy as np
import orjson
import pytest

from stream_app.inference.types import WindowTranscript, Word
from stream_app.streaming.merger import MergePolicy, SegmentMerger
from stream_app.streaming.windowing import Window
from stream_app.wire.segment import TranscriptSegment
from stream_app.worker.records import merger_from_doc, merger_to_doc

RATE = 16_000


def window(
    index: int, start: float, end: float, *, last: bool = False, interim: bool = False, overlap: float = 1.0
) -> Window:
    samples = np.zeros(round((end - start) * RATE), dtype=np.float32)
    if last:
        stable = end
    elif interim:
        stable = start
    else:
        stable = end - overlap
    return Window(index, round(start * RATE), samples, round(stable * RATE), is_last=last, is_interim=interim)


def words(*spec: tuple[str, float, float]) -> tuple[Word, ...]:
    return tuple(Word(start, end, f" {text}", 0.8) for text, start, end in spec)


def seq(text: str, start: float, step: float = 0.5) -> tuple[Word, ...]:
    return words(*[(t, start + i * step, start + i * step + step * 0.8) for i, t in enumerate(text.split())])


def transcript(ws: tuple[Word, ...], **kw: object) -> WindowTranscript:
    fields: dict[str, object] = {
        "words": ws,
        "text": "".join(w.text for w in ws),
        "avg_logprob": -0.3,
        "no_speech_prob": 0.01,
        "compression_ratio": 1.2,
        "model": "tiny.en",
        "precision": "int8",
    }
    fields.update(kw)
    return WindowTranscript(**fields)  # type: ignore[arg-type]


def finals(segments: list[TranscriptSegment]) -> list[TranscriptSegment]:
    return [s for s in segments if s.is_final]


def final_text(segments: list[TranscriptSegment]) -> str:
    return " ".join(s.text for s in finals(segments) if s.text)


def test_last_window_commits_everything_in_one_end_of_stream_segment() -> None:
    merger = SegmentMerger("s")
    (segment,) = merger.add(window(0, 0, 3, last=True), transcript(seq("ask not what", 0.2)))
    assert (segment.segment_id, segment.index, segment.revision, segment.is_final) == ("s:0:0", 0, 0, True)
    assert segment.text == "ask not what" and segment.end_of_stream
    assert (segment.model, segment.precision) == ("tiny.en", "int8")
    assert segment.confidence == pytest.approx(0.8)
    assert (segment.start, segment.end) == pytest.approx((0.2, 1.6))
    assert segment.latency_ms is None
    assert merger.ended and merger.add(window(1, 2, 3, last=True), transcript(seq("more", 2))) == []


def test_words_starting_in_the_overlap_are_held_then_taken_from_the_next_window() -> None:
    merger = SegmentMerger("s")
    first = merger.add(window(0, 0, 5), transcript(seq("and so my fellow americans ask not what", 0.5)))
    # starts 0.5 .. 4.0: "what" starts at the next window's start (4.0) and is held back
    assert [(s.is_final, s.segment_id, s.text) for s in first] == [
        (True, "s:0:0", "and so my fellow americans ask not"),
        (False, "s:0:1", "what"),
    ]
    second = merger.add(
        window(1, 4, 9, last=True), transcript(words(("what", 4.05, 4.4), ("your", 4.5, 4.8), ("country", 4.9, 5.4)))
    )
    assert [(s.is_final, s.segment_id, s.text) for s in second] == [(True, "s:0:1", "what your country")]
    assert final_text(first + second) == "and so my fellow americans ask not what your country"


def test_boundary_word_seen_twice_with_moved_timestamps_is_not_doubled() -> None:
    merger = SegmentMerger("s")
    merger.add(window(0, 0, 5), transcript(words(("do", 3.0, 3.3), ("for", 3.4, 3.6), ("you", 3.7, 4.2))))
    # the next window places "for you" later: the n-gram match on the committed tail removes it
    segments = merger.add(
        window(1, 4, 9, last=True), transcript(words(("for", 4.15, 4.3), ("you", 4.35, 4.6), ("ask", 4.8, 5.0)))
    )
    assert final_text(segments) == "ask"


def test_boundary_word_cut_by_the_next_window_is_dropped_by_time() -> None:
    merger = SegmentMerger("s")
    merger.add(window(0, 0, 5), transcript(words(("fellow", 3.2, 3.6), ("americans", 3.7, 4.4))))
    # the next window starts at 4.0 inside "americans" and hears a fragment
    segments = merger.add(window(1, 4, 9, last=True), transcript(words(("cans", 4.0, 4.4), ("ask", 4.6, 4.9))))
    assert final_text(segments) == "ask"


def test_first_word_stretched_back_to_the_window_start_is_kept() -> None:
    # tiny.en on jfk.flac: window 1 ends its final words with "for you" (you to 8.28); window 2 starts at
    # 8.0 and stretches the held word "ask" back to its start
    merger = SegmentMerger("s")
    merger.add(window(1, 4, 9), transcript(words(("for", 7.02, 7.24), ("you", 7.24, 8.28), ("ask", 8.28, 8.68))))
    segments = merger.add(window(2, 8, 11, last=True), transcript(words(("ask", 8.0, 8.66), ("what", 8.66, 8.94))))
    assert final_text(segments) == "ask what"


def test_empty_last_window_commits_the_held_words() -> None:
    merger = SegmentMerger("s")
    merger.add(window(0, 0, 5), transcript(words(("your", 3.5, 3.9), ("country", 4.2, 4.6))))
    (end,) = merger.add(window(1, 5, 5, last=True), None)
    assert (end.segment_id, end.text, end.end_of_stream) == ("s:0:1", "country", True)


def test_punctuation_and_case_do_not_defeat_the_overlap_match() -> None:
    merger = SegmentMerger("s")
    merger.add(window(0, 0, 5), transcript(words(("Country.", 3.5, 4.1))))
    segments = merger.add(window(1, 4, 9, last=True), transcript(words(("country", 4.12, 4.5), ("And", 4.8, 5.0))))
    assert final_text(segments) == "And"


def test_a_genuine_repeat_after_a_pause_is_kept() -> None:
    merger = SegmentMerger("s")
    merger.add(window(0, 0, 5), transcript(words(("no", 1.0, 1.3))))
    segments = merger.add(window(1, 4, 9, last=True), transcript(words(("no", 6.0, 6.3))))
    assert final_text(segments) == "no"


def test_local_agreement_commits_what_two_interim_passes_share() -> None:
    merger = SegmentMerger("s")
    first = merger.add(window(0, 0, 1.5, interim=True), transcript(seq("and so", 0.2)))
    assert [(s.is_final, s.segment_id, s.revision, s.text) for s in first] == [(False, "s:0:0", 0, "and so")]
    second = merger.add(window(0, 0, 2.5, interim=True), transcript(seq("and so my fellow", 0.2)))
    assert [(s.is_final, s.segment_id, s.revision, s.text) for s in second] == [
        (True, "s:0:0", 1, "and so"),  # above the interim r0 it replaces (schema v3)
        (False, "s:0:1", 0, "my fellow"),
    ]
    third = merger.add(window(0, 0, 3.5, interim=True), transcript(seq("and so my fellows americans", 0.2)))
    assert [(s.is_final, s.segment_id, s.revision, s.text) for s in third] == [
        (True, "s:0:1", 1, "my"),
        (False, "s:0:2", 0, "fellows americans"),
    ]


def test_held_words_of_a_final_window_agree_with_the_next_preview() -> None:
    merger = SegmentMerger("s")
    first = merger.add(window(0, 0, 5), transcript(words(("ask", 4.2, 4.5))))
    assert [(s.is_final, s.text) for s in first] == [(False, "ask")]
    second = merger.add(window(1, 4, 7, interim=True), transcript(words(("ask", 4.2, 4.5), ("not", 4.6, 4.9))))
    assert [(s.is_final, s.segment_id, s.text) for s in second] == [(True, "s:0:0", "ask"), (False, "s:0:1", "not")]


def test_vanished_preview_is_retracted_once() -> None:
    merger = SegmentMerger("s")
    merger.add(window(0, 0, 1.5, interim=True), transcript(seq("hello", 0.2)))
    retract = merger.add(window(0, 0, 2.5, interim=True), transcript((), skipped_silence=True))
    assert [(s.is_final, s.segment_id, s.revision, s.text) for s in retract] == [(False, "s:0:0", 1, "")]
    assert merger.add(window(0, 0, 3.5, interim=True), transcript((), skipped_silence=True)) == []


def test_silence_guards_give_no_text() -> None:
    cases = [
        transcript(seq("thank you", 1.0), skipped_silence=True),
        transcript(()),
        transcript(seq("thank you", 1.0), no_speech_prob=0.9, avg_logprob=-1.5),
        transcript(seq("you you you you", 1.0), compression_ratio=3.0),
    ]
    for case in cases:
        merger = SegmentMerger("s")
        assert merger.add(window(0, 0, 5), case) == []
        (end,) = merger.add(window(1, 4, 6, last=True), case)
        assert end.is_final and end.end_of_stream and end.text == "" and end.words == ()


def test_quiet_but_confident_window_is_kept() -> None:
    merger = SegmentMerger("s")
    (segment,) = merger.add(
        window(0, 0, 3, last=True), transcript(seq("hi", 1.0), no_speech_prob=0.9, avg_logprob=-0.2)
    )
    assert segment.text == "hi"


def test_repetition_loop_is_cut_after_three_times_even_across_windows() -> None:
    merger = SegmentMerger("s")
    first = merger.add(window(0, 0, 5), transcript(seq("thank you thank you", 0.0, 0.4)))
    second = merger.add(window(1, 4, 9, last=True), transcript(seq("thank you thank you thank you goodbye", 4.0, 0.4)))
    assert final_text(first + second) == "thank you thank you thank you goodbye"


def test_replayed_final_and_stale_preview_change_nothing() -> None:
    merger = SegmentMerger("s")
    w0 = window(0, 0, 5)
    t0 = transcript(seq("ask not", 1.0))
    assert merger.add(w0, t0)
    state = merger_to_doc(merger.state)
    assert merger.add(w0, t0) == []
    assert merger.add(window(0, 0, 4.5, interim=True), t0) == []
    assert merger_to_doc(merger.state) == state


def test_empty_last_window_still_ends_the_stream_with_the_last_model() -> None:
    merger = SegmentMerger("s")
    merger.add(window(0, 0, 5, overlap=0), transcript(seq("hello", 1.0)))
    (end,) = merger.add(window(1, 5, 5, last=True), None)
    assert (end.segment_id, end.text, end.end_of_stream, end.model) == ("s:0:1", "", True, "tiny.en")


def test_merger_stored_and_restored_continues_identically() -> None:
    passes = [
        (window(0, 0, 2, interim=True), transcript(seq("and so", 0.2))),
        (window(0, 0, 3, interim=True), transcript(seq("and so my fellow", 0.2))),
        (window(0, 0, 5), transcript(seq("and so my fellow americans ask not", 0.2))),
        (window(1, 4, 6, interim=True), transcript(words(("not", 3.8, 4.1), ("what", 4.2, 4.5)))),
        (window(1, 4, 9, last=True), transcript(words(("what", 4.2, 4.5), ("your", 4.6, 4.9)))),
    ]
    reference = SegmentMerger("s")
    expected = [s for w, t in passes for s in reference.add(w, t)]
    for cut in range(len(passes)):
        merger = SegmentMerger("s")
        got = [s for w, t in passes[:cut] for s in merger.add(w, t)]
        merger = SegmentMerger.from_state(merger_from_doc(orjson.loads(orjson.dumps(merger_to_doc(merger.state)))))
        got += [s for w, t in passes[cut:] for s in merger.add(w, t)]
        assert got == expected
    assert final_text(expected) == "and so my fellow americans ask not what your"
    assert [s.index for s in finals(expected)] == list(range(len(finals(expected))))


def test_agreed_words_near_a_previews_end_wait_for_more_audio() -> None:
    merger = SegmentMerger("s", MergePolicy(commit_lookahead=1.0))
    merger.add(window(0, 0, 3, interim=True), transcript(seq("and so my fellow", 0.2)))
    second = merger.add(window(0, 0, 4, interim=True), transcript(seq("and so my fellow americans", 0.2)))
    # "and so my fellow" agree, but only words ending by 4 - 1 = 3 s are committed: "fellow" ends at 1.9 s
    assert next((s.is_final, s.text) for s in second) == (True, "and so my fellow")
    merger = SegmentMerger("s", MergePolicy(commit_lookahead=2.5))
    merger.add(window(0, 0, 3, interim=True), transcript(seq("and so my fellow", 0.2)))
    second = merger.add(window(0, 0, 4, interim=True), transcript(seq("and so my fellow americans", 0.2)))
    assert [(s.is_final, s.text) for s in second] == [(True, "and so"), (False, "my fellow americans")]


def test_previews_commit_nothing_when_interim_commits_are_off() -> None:
    merger = SegmentMerger("s", MergePolicy(interim_commits=False))
    merger.add(window(0, 0, 3, interim=True), transcript(seq("and so my fellow", 0.2)))
    second = merger.add(window(0, 0, 4, interim=True), transcript(seq("and so my fellow americans", 0.2)))
    assert all(not s.is_final for s in second)


def test_a_rejected_preview_changes_nothing() -> None:
    merger = SegmentMerger("s")
    merger.add(window(0, 0, 3, interim=True), transcript(seq("and so my fellow", 0.2)))
    rejected = WindowTranscript((), "", 0.0, 0.0, 0.0, "tiny.en", "int8", rejected_preview=True)
    assert merger.add(window(0, 0, 4, interim=True), rejected) == []
    second = merger.add(window(0, 0, 5, interim=True), transcript(seq("and so my fellow americans", 0.2)))
    assert [s.text for s in second if s.is_final] == ["and so my fellow"]  # the earlier preview still counts
