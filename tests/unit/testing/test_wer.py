"""WER helpers: normalisation, corpus WER and boundary repeats."""

from __future__ import annotations

import pytest

from stream_app.testing.wer import boundary_repeats, corpus_wer, normalize, word_error_rate


def test_normalize_ignores_case_and_punctuation() -> None:
    assert normalize("Ask not, what your COUNTRY can do!") == "ask not what your country can do"
    assert normalize("Don't  stop.") == "dont stop"


def test_word_error_rate_after_normalisation() -> None:
    assert word_error_rate("Ask not.", "ask not") == 0.0
    assert word_error_rate("ask not what", "ask what") == pytest.approx(1 / 3)
    assert word_error_rate("", "") == 0.0
    assert word_error_rate("", "words") == 1.0


def test_corpus_wer_weights_by_reference_words() -> None:
    # one error in a 1-word file and none in a 3-word file: 1 / 4, not the mean of 1.0 and 0.0
    assert corpus_wer(["yes", "one two three"], ["no", "one two three"]) == pytest.approx(0.25)


def test_boundary_repeats_counts_only_repeats_the_reference_lacks() -> None:
    reference = "ask what you can do for your country"
    assert boundary_repeats(reference, "ask what you can do for for your country") == 1
    assert boundary_repeats(reference, "ask what you can do for your country") == 0
    assert boundary_repeats("that that is is", "that that is is") == 0
    assert boundary_repeats(reference, "Ask, ask what you can do for your country your country") == 2


def test_boundary_repeats_counts_doubled_phrases_up_to_five_words() -> None:
    reference = "and so my fellow americans ask not what your country can do for you"
    assert boundary_repeats(reference, "and so my fellow americans ask not what ask not what your country") == 1
    assert boundary_repeats(reference, "and so my fellow americans my fellow americans ask not") == 1
    assert boundary_repeats(reference, "can do for you can do for you") == 1
    assert boundary_repeats(reference, "a b c d e f a b c d e f") == 0  # six words: longer than a boundary repeat
    assert boundary_repeats("they said no no", "they said no no") == 0
