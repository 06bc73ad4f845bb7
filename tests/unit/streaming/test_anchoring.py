"""Where a free decode's new words begin: after the final words it heard again."""

from __future__ import annotations

from stream_app.inference.types import Word
from stream_app.streaming.anchoring import reading_edits, words_after_final
from stream_app.testing.fake_model import word_sequence


def texts(words: list[Word]) -> list[str]:
    return [w.text for w in words]


def finals(text: str, end: float, start: float = 0.0) -> list[Word]:
    """Final words spread evenly over ``[start, end]``."""
    parts = text.split()
    step = (end - start) / len(parts)
    return word_sequence([(start + i * step, start + (i + 1) * step, t) for i, t in enumerate(parts)])


def test_without_final_words_every_word_is_new() -> None:
    words = word_sequence([(0.0, 0.4, "They"), (0.5, 0.9, "walked")])
    anchored = words_after_final(words, [], 0.0)
    assert texts(anchored.words) == ["They", "walked"] and anchored.matched


def test_the_final_words_heard_again_are_dropped_even_when_their_start_is_heard_differently() -> None:
    words = word_sequence(
        [(0.1, 0.5, "using"), (0.6, 0.8, "the"), (0.9, 1.9, "gate."), (2.5, 2.7, "They"), (2.7, 3.0, "walked")]
    )
    anchored = words_after_final(words, finals("sheep before closing the gate.", 2.0), 0.0)
    assert texts(anchored.words) == ["They", "walked"] and anchored.matched


def test_a_genuine_repeat_of_the_last_final_word_is_kept() -> None:
    words = word_sequence([(0.0, 0.5, "said"), (0.6, 0.9, "no"), (1.0, 1.3, "no"), (1.4, 1.8, "thanks")])
    anchored = words_after_final(words, finals("he said no", 0.95), 0.0)
    assert texts(anchored.words) == ["no", "thanks"]


def test_a_repeat_is_kept_when_its_timestamp_lies_closer_to_the_final_word_than_the_word_heard_again() -> None:
    # "no no" final (ending at 1.0); the decode hears "no no no go", 0.2 s early: its third "no" ends
    # nearer 1.0 than its second, yet reading "no no no" as the final words adds a word
    words = word_sequence([(0.0, 0.2, "no"), (0.35, 0.6, "no"), (0.75, 0.95, "no"), (1.2, 1.5, "go")])
    anchored = words_after_final(words, word_sequence([(0.2, 0.4, "no"), (0.55, 0.8, "no")]), 0.0)
    assert texts(anchored.words) == ["no", "go"] and anchored.matched


def test_a_final_word_heard_differently_again_moves_no_anchor_onto_a_repeat_after_it() -> None:
    # "bent no no" became final (an unstable word settled as "bent"); the next decode hears "meant" and
    # the speaker's third "no", 0.15 s early: the new "no" ends nearer the last final word than the one
    # heard again, and both have one matching word before them
    final = word_sequence([(0.0, 0.4, "bent"), (0.6, 0.8, "no"), (1.0, 1.2, "no")])
    words = word_sequence(
        [(0.0, 0.25, "meant"), (0.45, 0.65, "no"), (0.85, 1.05, "no"), (1.15, 1.3, "no"), (1.45, 1.85, "X")]
    )
    assert texts(words_after_final(words, final, 0.0).words) == ["no", "X"]


def test_final_words_before_the_decodes_audio_are_not_looked_for() -> None:
    # the decode reads from 2.0 s: the final "no" at 1.0 s lies before it, so the decoded "no no" is the
    # final one heard again and a new one, not the two final ones
    final = word_sequence([(1.0, 1.2, "no"), (2.5, 2.7, "no")])
    words = word_sequence([(2.5, 2.7, "no"), (2.85, 3.0, "no"), (3.2, 3.5, "go")])
    assert texts(words_after_final(words, final, 2.0).words) == ["no", "go"]


def test_a_final_word_just_before_the_decodes_start_that_it_heard_counts_as_read() -> None:
    # found by hypothesis (decodes' times shifted as a whole by up to 0.125 s): the first final "no" was
    # timed by a decode 0.1 s early, so its middle lies just before this decode's start (19.984 s), which
    # heard it whole, 0.05 s later. Left out of the words read, the decoded "no no" read like the last
    # final word alone plus a new one, and the last final "no" was kept a second time
    final = word_sequence([(19.902, 20.058, "no"), (20.558, 20.747, "no")])
    words = word_sequence(
        [(19.948, 20.104, "no"), (20.604, 20.792, "no"), (21.292, 21.792, "no"), (22.292, 22.792, "no")]
    )
    assert [w.start for w in words_after_final(words, final, 19.984).words] == [21.292, 22.292]


def test_a_final_word_just_after_the_decodes_start_that_it_did_not_hear_moves_no_anchor_onto_a_repeat() -> None:
    # the first final "no" lies just after the decode's start (1.98 s) as another decode timed it, but this
    # decode's times sit 0.1 s early and it did not hear it: counted as read, the speaker's next "no" matched
    # two final words and anchored, and that word was lost
    final = word_sequence([(1.9, 2.1, "no"), (2.5, 2.7, "no")])
    words = word_sequence([(2.4, 2.6, "no"), (2.9, 3.1, "no"), (3.3, 3.6, "go")])
    assert texts(words_after_final(words, final, 1.98).words) == ["no", "go"]


def test_a_decode_whose_times_sit_early_still_reads_every_final_word_it_heard() -> None:
    # "bent no no" final, the decode 0.2 s early: "bent" lies within the times' reach of its start, and
    # reading the final words without it must not let the speaker's new "no" pass for the last final word
    final = word_sequence([(0.1, 0.4, "bent"), (0.6, 0.8, "no"), (1.0, 1.2, "no")])
    words = word_sequence(
        [(0.1, 0.25, "bent"), (0.4, 0.6, "no"), (0.8, 1.0, "no"), (1.15, 1.3, "no"), (1.45, 1.85, "X")]
    )
    assert texts(words_after_final(words, final, 0.07).words) == ["no", "X"]


def test_among_equal_matches_the_one_closest_in_time_anchors() -> None:
    words = word_sequence([(0.0, 0.3, "no"), (1.0, 1.3, "no"), (1.5, 1.8, "go")])
    assert texts(words_after_final(words, finals("no", 1.25, 1.0), 1.0).words) == ["go"]
    assert texts(words_after_final(words, finals("no", 0.35), 0.0).words) == ["no", "go"]


def test_a_match_too_far_from_the_final_word_is_no_anchor() -> None:
    words = word_sequence([(0.0, 0.3, "no"), (0.4, 0.7, "way"), (2.0, 2.3, "no")])
    anchored = words_after_final(words, finals("no", 0.3), 0.0)
    assert texts(anchored.words) == ["way", "no"] and anchored.matched
    far = words_after_final(words, finals("no", 1.2, 0.9), 0.0)
    assert not far.matched and texts(far.words) == ["no"]


def test_without_a_match_the_words_mostly_after_the_final_words_are_new() -> None:
    words = word_sequence([(0.0, 0.6, "icecream"), (0.9, 1.2, "please")])
    anchored = words_after_final(words, finals("I", 0.2), 0.0)
    assert not anchored.matched
    assert texts(anchored.words) == ["icecream", "please"]
    assert texts(words_after_final(words, finals("I", 0.4), 0.0).words) == ["please"]


def test_reading_edits_counts_words_changed_added_or_left_out() -> None:
    assert reading_edits(["meant", "no", "no", "no"], ["bent", "no", "no"]) == [3, 3, 2, 1, 2]
    assert reading_edits([], ["a"]) == [1]
