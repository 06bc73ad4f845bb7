"""Where a free decode's new words begin: after the final words it heard again."""

from __future__ import annotations

from stream_app.streaming.anchoring import words_after_final
from stream_app.testing.fake_model import word_sequence


def texts(words: list) -> list[str]:
    return [w.text for w in words]


def test_without_final_words_every_word_is_new() -> None:
    words = word_sequence([(0.0, 0.4, "They"), (0.5, 0.9, "walked")])
    anchored = words_after_final(words, "", 0.0)
    assert texts(anchored.words) == ["They", "walked"] and anchored.matched


def test_the_final_words_heard_again_are_dropped_even_when_their_start_is_heard_differently() -> None:
    words = word_sequence(
        [(0.1, 0.5, "using"), (0.6, 0.8, "the"), (0.9, 1.9, "gate."), (2.5, 2.7, "They"), (2.7, 3.0, "walked")]
    )
    anchored = words_after_final(words, "sheep before closing the gate.", 2.0)
    assert texts(anchored.words) == ["They", "walked"] and anchored.matched


def test_a_genuine_repeat_of_the_last_final_word_is_kept() -> None:
    words = word_sequence([(0.0, 0.5, "said"), (0.6, 0.9, "no"), (1.0, 1.3, "no"), (1.4, 1.8, "thanks")])
    anchored = words_after_final(words, "he said no", 0.95)
    assert texts(anchored.words) == ["no", "thanks"]


def test_among_equal_matches_the_one_closest_in_time_anchors() -> None:
    words = word_sequence([(0.0, 0.3, "no"), (1.0, 1.3, "no"), (1.5, 1.8, "go")])
    assert texts(words_after_final(words, "no", 1.25).words) == ["go"]
    assert texts(words_after_final(words, "no", 0.35).words) == ["no", "go"]


def test_a_match_too_far_from_the_final_word_is_no_anchor() -> None:
    words = word_sequence([(0.0, 0.3, "no"), (0.4, 0.7, "way"), (2.0, 2.3, "no")])
    anchored = words_after_final(words, "no", 0.3)
    assert texts(anchored.words) == ["way", "no"] and anchored.matched
    far = words_after_final(words, "no", 1.2)
    assert not far.matched and texts(far.words) == ["no"]


def test_without_a_match_the_words_mostly_after_the_final_words_are_new() -> None:
    words = word_sequence([(0.0, 0.6, "icecream"), (0.9, 1.2, "please")])
    anchored = words_after_final(words, "I", 0.2)
    assert not anchored.matched
    assert texts(anchored.words) == ["icecream", "please"]
    assert texts(words_after_final(words, "I", 0.4).words) == ["please"]
