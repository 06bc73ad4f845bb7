"""SRT and WebVTT cues from final words: reading limits, timestamps, no overlap."""

from __future__ import annotations

import itertools

import pytest

from stream_app.captions.subtitles import Cue, cues_from_words, render, settle_cues, timestamp
from stream_app.inference.types import Word


def words(*items: tuple[float, float, str]) -> list[Word]:
    return [Word(start, end, text, 0.9) for start, end, text in items]


def test_a_sentence_end_and_a_pause_close_a_cue() -> None:
    cues = cues_from_words(
        words((0.0, 0.4, " And"), (0.4, 0.9, " so."), (1.0, 1.5, " Ask"), (1.5, 2.0, " not"), (4.0, 4.5, " what"))
    )
    expected = [(0.0, 0.9, "And so."), (1.0, 2.0, "Ask not"), (4.0, 4.5, "what")]
    assert [(c.start, c.end, c.text) for c in cues] == expected


def test_a_long_run_is_cut_within_six_seconds_and_two_lines() -> None:
    run = words(*((i * 0.5, i * 0.5 + 0.4, f" word{i:02d}") for i in range(30)))
    cues = cues_from_words(run)
    assert all(c.end - c.start <= 6.0 for c in cues)
    assert all(len(line) <= 42 for c in cues for line in c.text.split("\n"))
    assert all(c.text.count("\n") <= 1 for c in cues)
    assert " ".join(c.text.replace("\n", " ") for c in cues) == " ".join(f"word{i:02d}" for i in range(30))
    assert all(a.end <= b.start for a, b in itertools.pairwise(cues))


def test_a_one_word_cue_stays_readable_without_overlapping_the_next() -> None:
    cues = cues_from_words(words((1.0, 1.05, " Hi."), (1.1, 1.6, " There")))
    assert cues[0] == Cue(1.0, 1.1, "Hi.")  # lengthened to the next cue's start, no further
    assert cues_from_words(words((1.0, 1.05, " Hi.")))[0].end == pytest.approx(1.3)


def test_srt_and_vtt_files() -> None:
    cues = [Cue(0.0, 1.5, "And so."), Cue(3661.25, 3662.0, "Ask not")]
    assert render(cues, "srt") == (
        "1\n00:00:00,000 --> 00:00:01,500\nAnd so.\n\n2\n01:01:01,250 --> 01:01:02,000\nAsk not\n\n"
    )
    assert render(cues, "vtt") == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nAnd so.\n\n01:01:01.250 --> 01:01:02.000\nAsk not\n\n"
    )
    assert timestamp(-0.2, "srt") == "00:00:00,000"
    with pytest.raises(ValueError, match="srt or vtt"):
        render(cues, "ass")


def test_vtt_escapes_markup_and_arrows_srt_keeps_the_text() -> None:
    cue = Cue(0.5, 2.0, "Press A --> B <b>&amp;")
    assert render([cue], "vtt") == "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nPress A --&gt; B &lt;b&gt;&amp;amp;\n\n"
    assert render([cue], "srt") == "1\n00:00:00,500 --> 00:00:02,000\nPress A --> B <b>&amp;\n\n"


def test_settled_cues_end_by_the_next_start_and_the_files_end() -> None:
    cues = [Cue(1.0, 2.3, "a"), Cue(2.0, 2.5, "b"), Cue(3.0, 3.3, "c"), Cue(3.1, 3.4, "d")]
    assert settle_cues(cues, until=3.2) == [
        Cue(1.0, 2.0, "a"),
        Cue(2.0, 2.5, "b"),
        Cue(3.0, 3.1, "c"),
        Cue(3.1, 3.2, "d"),
    ]
    squeezed = settle_cues([Cue(4.0, 4.3, "x"), Cue(4.0, 4.2, "y")], until=4.0)
    assert all(c.end > c.start for c in squeezed)  # never a cue that ends before it starts
    assert settle_cues(cues[:1]) == cues[:1]
