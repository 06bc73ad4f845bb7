"""The guards on constructed decode figures: which decodes are re-run with the full context, and why."""

from __future__ import annotations

import pytest

from stream_app.inference.guards import (
    FALLBACK_REASONS,
    DecodeFigures,
    DecodeGuards,
    collapsed_words,
    context_fallback_reason,
    loops,
    said_again,
)

GUARDS = DecodeGuards()
SENTENCE = "The small dog barked at the postman and then ran back inside."


def figures(text: str = SENTENCE, **overrides: object) -> DecodeFigures:
    values: dict[str, object] = {"avg_logprob": -0.3, "no_speech_prob": 0.02, "voiced_seconds": 3.5}
    values.update(overrides)
    return DecodeFigures(text, **values)  # type: ignore[arg-type]


def test_a_clean_decode_is_kept() -> None:
    assert context_fallback_reason(figures(), GUARDS) is None
    jfk = "And so my fellow Americans ask not what your country can do for you, ask what you can do for your country."
    assert context_fallback_reason(figures(jfk, voiced_seconds=10.0), GUARDS) is None


@pytest.mark.parametrize(
    ("text", "loop"),
    [
        ("the net net net result", ("net",)),
        ("go to the end of the end of the end of it", ("the", "end", "of")),
        (f"{SENTENCE} {SENTENCE}", tuple(SENTENCE.lower().rstrip(".").split()[:5])),
    ],
)
def test_loops_are_found(text: str, loop: tuple[str, ...]) -> None:
    words = figures(text).words
    runs = loops(words, GUARDS.loop_repeats, GUARDS.loop_max_ngram, long_ngram=GUARDS.loop_long_ngram)
    start, size, _ = runs[0]
    assert tuple(words[start : start + size])[: len(loop)] == loop


def test_natural_repetition_is_not_a_loop() -> None:
    for text in (
        "ask not what your country can do for you ask what you can do for your country",
        "no no that is not it",  # a word said twice
        "we will we will rock you",  # a short phrase said twice
        "",
    ):
        words = figures(text).words
        assert loops(words, 3, 32, long_ngram=5) == [], text


def test_a_repeated_sentence_is_re_run_as_a_loop() -> None:
    looping = figures(" ".join([SENTENCE] * 5), voiced_seconds=7.0)
    assert looping.compression_ratio > GUARDS.compression_ratio_threshold  # compression would catch it too
    assert context_fallback_reason(looping, GUARDS) == "repetition"  # the loop is named first
    twice = figures(f"{SENTENCE} {SENTENCE}", voiced_seconds=7.0)
    assert twice.compression_ratio < GUARDS.compression_ratio_threshold  # too short to compress well
    assert context_fallback_reason(twice, GUARDS) == "repetition"


def test_a_decode_that_ran_into_its_token_budget_is_a_loop() -> None:
    assert context_fallback_reason(figures(truncated=True), GUARDS) == "repetition"
    assert GUARDS.token_budget(10.0) == 116 and GUARDS.token_budget(0.0) == 16


def test_each_guard_names_its_reason() -> None:
    varied = (
        "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty"
    )
    assert context_fallback_reason(figures("a" * 200 + " b"), GUARDS) == "compression_ratio"
    assert context_fallback_reason(figures(avg_logprob=-1.2), GUARDS) == "avg_logprob"
    assert context_fallback_reason(figures(no_speech_prob=0.8), GUARDS) == "no_speech"
    assert context_fallback_reason(figures("The small dog.", voiced_seconds=8.0), GUARDS) == "too_few_words"
    assert context_fallback_reason(figures(varied, voiced_seconds=8.0), GUARDS) is None
    assert set(FALLBACK_REASONS) == {
        "repetition",
        "compression_ratio",
        "avg_logprob",
        "no_speech",
        "too_few_words",
        "stopped_early",
    }


def test_too_few_words_needs_enough_speech_to_judge() -> None:
    assert context_fallback_reason(figures("", voiced_seconds=0.9), GUARDS) is None  # under a second of speech
    assert context_fallback_reason(figures("", voiced_seconds=1.0), GUARDS) == "too_few_words"
    assert context_fallback_reason(figures("Yes.", voiced_seconds=1.9), GUARDS) is None  # 1 word >= 0.5 * 1.9


def test_whispers_temperature_and_silence_rules_are_unchanged() -> None:
    assert GUARDS.needs_fallback(-1.2, 1.5) and GUARDS.needs_fallback(-0.2, 2.5)
    assert not GUARDS.needs_fallback(-0.2, 1.5)
    assert GUARDS.is_no_speech(0.7, -1.5) and not GUARDS.is_no_speech(0.7, -0.5)


def test_a_loop_needs_two_repeats_at_least() -> None:
    with pytest.raises(ValueError, match="two repeats"):
        loops(["a", "a"], 1, 4)


def test_a_loop_that_begins_in_the_forced_words_is_found() -> None:
    # forced through "The right", the decoder went on: "match at ... room. The right match at ... room."
    said = "match at the kitchen window in the back room."
    looping = figures(f"{said} The right {said}", before="We need them by meeting. The right", voiced_seconds=3.0)
    assert context_fallback_reason(looping, GUARDS) == "repetition"
    assert context_fallback_reason(figures(said, before="The right", voiced_seconds=3.0), GUARDS) is None


def test_a_loop_inside_the_forced_words_alone_is_not_held_against_the_decode() -> None:
    assert context_fallback_reason(figures("and then we left", before="no no no no no"), GUARDS) is None


def test_words_piled_up_without_audio_are_found_and_words_said_are_not() -> None:
    # alignment puts invented words at one instant: three or more starting within 0.15 s
    assert collapsed_words([17.3, 17.6, 17.8, 20.02, 20.02, 20.02, 20.02, 20.1]) == [3, 4, 5, 6, 7]
    assert collapsed_words([0.0, 0.1, 0.2, 0.3, 0.4]) == []  # five words a second, fast but real
    assert collapsed_words([1.0, 1.0, 1.5]) == []  # two words at one instant: a cut word, not a pile
    assert collapsed_words([]) == []


def _timed(text: str, start: float, seconds_per_word: float) -> list[tuple[str, float, float]]:
    words = text.split()
    return [(w, start + i * seconds_per_word, start + (i + 1) * seconds_per_word) for i, w in enumerate(words)]


def test_a_sentence_said_twice_on_speech_of_its_own_is_said_again() -> None:
    said = "a strong wind blew across the field"
    twice = figures(f"{said}. {said}.", voiced_seconds=6.0)
    grams = GUARDS.loops_in(twice)
    assert grams == {tuple(said.split())}
    words = _timed(said, 0.5, 0.4) + _timed(said, 4.0, 0.35)  # read again, a little faster
    speech = [(0.4, 3.4), (3.9, 6.5)]
    assert said_again(grams, words, speech, GUARDS)
    assert context_fallback_reason(twice, GUARDS, heard_repeat=True) is None
    assert context_fallback_reason(figures(f"{said}.", truncated=True), GUARDS, heard_repeat=True) == "repetition"


def test_copies_piled_up_off_speech_or_squeezed_are_a_loop() -> None:
    said = "ask not what your country can do for you"
    grams = {tuple(said.split())}
    first = _timed(said, 0.0, 0.45)
    piled = first + _timed(said, 4.24, 0.0) + _timed(said, 4.7, 0.025)  # as tiny.en aligned a real loop
    speech = [(0.0, 5.0)]
    assert not said_again(grams, piled, speech, GUARDS)
    squeezed = first + _timed(said, 4.05, 0.1)  # a second copy in a quarter of the first one's time
    assert not said_again(grams, squeezed, speech, GUARDS)
    off_speech = first + _timed(said, 4.5, 0.45)  # where the voice detector heard nothing
    assert not said_again(grams, off_speech, [(0.0, 4.2)], GUARDS)
    assert said_again(grams, off_speech, [(0.0, 8.6)], GUARDS)


def test_a_sentence_read_again_must_keep_its_pace_better_than_a_word_said_again() -> None:
    said = "a strong wind blew across the field"
    grams = {tuple(said.split())}
    speech = [(0.0, 6.0)]
    assert said_again(grams, _timed(said, 0.0, 0.4) + _timed(said, 3.0, 0.26), speech, GUARDS)  # 0.65 of the pace
    assert not said_again(grams, _timed(said, 0.0, 0.4) + _timed(said, 3.0, 0.2), speech, GUARDS)  # half of it
    no = [("no", 0.0, 0.4), ("no", 0.5, 0.7), ("no", 0.8, 1.2)]  # one "no" half as long as the others
    assert said_again({("no",)}, no, [(0.0, 1.2)], GUARDS)


def test_every_repeat_must_be_heard_again() -> None:
    no = [("no", 0.0, 0.3), ("no", 0.5, 0.64), ("no", 0.8, 1.1)]  # a short "no" between two long ones
    assert said_again({("no",)}, no, [(0.0, 1.2)], GUARDS)
    said = "we need them by the meeting"
    looped = no + _timed(said, 1.5, 0.4) + _timed(said, 3.9, 0.0)
    assert not said_again({("no",), tuple(said.split())}, looped, [(0.0, 6.0)], GUARDS)
    # a repeat of the text that alignment does not show (it began in the forced words) is not heard again
    assert not said_again({("the", "right", "match")}, no, [(0.0, 1.2)], GUARDS)
    assert not said_again(set(), no, [(0.0, 1.2)], GUARDS)
