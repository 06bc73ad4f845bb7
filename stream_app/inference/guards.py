"""The checks a decode must pass before its words are used, and the reasons a window is re-run.

Two kinds of re-run, both bounded to one per window:

* A fitted-context decode (encoder input sized to the window) that looks wrong is re-run with the
  full 30 s context: its text repeats itself, compresses too well, is decoded with too little
  confidence, calls the window silent although Silero VAD heard speech, or has too few words for
  the speech VAD measured (dropped sentences). ``context_fallback_reason`` names the first check
  that failed; the counter ``stream_app_context_fallbacks_total{reason}`` counts them.
* A full-context greedy decode that fails Whisper's own rule (compression ratio or log
  probability) is re-decoded at the next temperature (``DecodeGuards.needs_fallback``).
* Speech that a cut's or a file's decode left without words, even after continuing from where it
  stopped, is tried once more with the full context: reason ``stopped_early``.

Words said again are not a loop: a repeat found in the text ("no no no", a sentence read twice) is
kept when alignment puts every copy on speech of its own (`said_again`); a loop's copies pile up
where the audio holds one.

Pure logic over figures of a decode, so every rule is unit-tested on constructed values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from faster_whisper.transcribe import get_compression_ratio
from prometheus_client import Counter

FALLBACK_REASONS = ("repetition", "compression_ratio", "avg_logprob", "no_speech", "too_few_words", "stopped_early")

CONTEXT_FALLBACKS = Counter(
    "stream_app_context_fallbacks_total",
    "Windows whose fitted-context decode tripped a guard and were re-run with the full 30 s context",
    ["reason"],
)
PREVIEWS_REJECTED = Counter(
    "stream_app_previews_rejected_total",
    "Previews (interim passes) whose decode tripped a guard: dropped, not re-run",
    ["reason"],
)
HOLES_FILLED = Counter(
    "stream_app_skipped_speech_decoded_total",
    "Speech a decode passed over between two of its words, decoded again on its own and heard as words",
)
REPEATS_HEARD = Counter(
    "stream_app_repeats_heard_total",
    "Decodes whose repeated words alignment found on speech of their own (said again, not a loop): kept",
)
for _reason in FALLBACK_REASONS:
    CONTEXT_FALLBACKS.labels(_reason)  # every reason is exported from the start, at 0
for _reason in (*FALLBACK_REASONS[:-1], "temperature"):
    PREVIEWS_REJECTED.labels(_reason)

_WORD = re.compile(r"[^\w']+")


@dataclass(frozen=True)
class DecodeGuards:
    """Thresholds that reject hallucinated, looping, silent or truncated output.

    The first four are Whisper's own defaults. A loop is an n-gram of up to ``loop_max_ngram`` words
    said ``loop_repeats`` times in a row, or twice in a row when it has ``loop_long_ngram`` words or
    more (a sentence said again). A fitted decode may generate ``max_tokens_per_second`` tokens per
    second of encoder input (plus a few): one that runs into that cap is looping.
    ``min_words_per_voiced_second`` applies to windows with at least ``min_voiced_seconds`` of speech.
    The ``repeat_*`` fields are what `said_again` asks of each copy of words said again, shorter
    repeats and repeats of ``loop_long_ngram`` words or more apart.
    """

    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    temperatures: tuple[float, ...] = (0.0, 0.4)  # one retry at most: bounded cost per window
    loop_repeats: int = 3
    loop_long_ngram: int = 5
    loop_max_ngram: int = 32
    max_tokens_per_second: float = 10.0
    min_words_per_voiced_second: float = 0.5
    min_voiced_seconds: float = 1.0
    repeat_min_share: float = 0.4  # each copy of words said again lasts at least this share of the longest...
    repeat_min_word_seconds: float = 0.08  # ...and this long per word, mostly over speech (`said_again`)
    repeat_min_share_long: float = 0.6  # the same for repeats of `loop_long_ngram` words or more (a sentence
    repeat_min_word_seconds_long: float = 0.12  # read again keeps its pace far better than "no no no" does)

    def token_budget(self, seconds: float) -> int:
        """Tokens a fitted decode of ``seconds`` of encoder input may generate (speech runs below 5 a second)."""
        return 16 + math.ceil(self.max_tokens_per_second * seconds)

    def needs_fallback(self, avg_logprob: float, compression_ratio: float) -> bool:
        """Whisper's rule for re-decoding at the next temperature."""
        return compression_ratio > self.compression_ratio_threshold or avg_logprob < self.log_prob_threshold

    def is_no_speech(self, no_speech_prob: float, avg_logprob: float) -> bool:
        """Whisper's rule for dropping a decode as silence: likely no speech and not confidently decoded."""
        return no_speech_prob > self.no_speech_threshold and avg_logprob < self.log_prob_threshold

    def loops_in(self, figures: DecodeFigures) -> set[tuple[str, ...]]:
        """Return the n-grams the decode repeats as a loop would (see the class docstring)."""
        before = [w for w in _WORD.split(figures.before.lower()) if w][-self.loop_max_ngram :]
        words = before + figures.words
        runs = loops(words, self.loop_repeats, self.loop_max_ngram, long_ngram=self.loop_long_ngram, after=len(before))
        return {tuple(words[start : start + size]) for start, size, _ in runs}


@dataclass(frozen=True)
class DecodeFigures:
    """What the guards look at in one greedy decode of one window."""

    text: str
    avg_logprob: float
    no_speech_prob: float
    voiced_seconds: float  # speech Silero VAD found in the window
    truncated: bool = False  # the decode ran into its token budget instead of ending
    before: str = ""  # the words the decode was forced through (a loop may start in them)

    @property
    def words(self) -> list[str]:
        """The decoded words, lower-cased and stripped of punctuation."""
        return [w for w in _WORD.split(self.text.lower()) if w]

    @property
    def compression_ratio(self) -> float:
        """Return the gzip compression ratio of the text, as Whisper computes it (0 for no text)."""
        return get_compression_ratio(self.text) if self.text.strip() else 0.0


def loops(
    words: Sequence[str], repeats: int, max_ngram: int, *, long_ngram: int = 0, after: int = 0
) -> list[tuple[int, int, int]]:
    """Return the runs of an n-gram (1 to ``max_ngram`` words) said ``repeats`` times in a row.

    Each run is (start, size, copies).

    ``net net net`` is a 1-gram said three times. With ``long_ngram`` > 0, an n-gram of at least that
    many words said twice in a row counts too (a sentence decoded twice). Only runs that end after
    the first ``after`` words count (those are context, already judged). Runs come by size, then start;
    a run is taken at its first word, so the same words at another phase are not listed again.
    """
    if repeats < 2:
        raise ValueError(f"a loop needs at least two repeats, got {repeats}")
    words = list(words)
    count = len(words)
    found = []
    for size in range(1, min(max_ngram, count // 2) + 1):
        needed = 2 if long_ngram and size >= long_ngram else repeats
        start = 0
        while start <= count - size * needed:
            gram = words[start : start + size]
            copies = 1
            while words[start + copies * size : start + (copies + 1) * size] == gram:
                copies += 1
            if copies >= needed and start + size * copies > after:
                found.append((start, size, copies))
                start += size * copies
            else:
                start += 1
    return found


def collapsed_words(starts: Sequence[float], *, run: int = 3, within: float = 0.15) -> list[int]:
    """Indexes of words that ``run`` or more words share ``within`` seconds of start time with.

    Nobody says three words in 0.15 s: alignment piles words up like that when it finds no audio for
    them, at the end of a window the decoder went on past (a phrase said again, a sentence invented).
    """
    marked: set[int] = set()
    first = 0
    for last in range(len(starts)):
        while starts[last] - starts[first] >= within:
            first += 1
        if last - first + 1 >= run:
            marked.update(range(first, last + 1))
    return sorted(marked)


def said_again(
    grams: Collection[tuple[str, ...]],
    words: Sequence[tuple[str, float, float]],
    speech: Sequence[tuple[float, float]],
    guards: DecodeGuards,
) -> bool:
    """Tell whether alignment puts every copy of every repeat on speech of its own: said again, not a loop.

    ``grams`` are the repeats found in the decode's text (`DecodeGuards.loops_in`), ``words`` its
    aligned words (text, start, end) and ``speech`` the spans VAD heard, in the same seconds. Every
    repeat among the aligned words is judged, and every gram must be one of them: each copy must last
    ``repeat_min_share`` of its run's longest and ``repeat_min_word_seconds`` per word (the ``_long``
    values for long repeats), and lie over speech for at least half its length. A loop fails: Whisper
    writes copies the audio does not hold, and alignment squeezes them into the last frames. So does a
    repeat that began in the forced words (those are not aligned again), so with ``force_final_words``
    a sentence said twice across a commit is still rejected. What this cannot see is a copy laid over
    other speech of a similar length: the caller keeps repeats only in ticks and previews, whose words
    become final only when two decodes agree on them.
    """
    tokens = [(t, a, b) for text, a, b in words for t in _WORD.split(text.lower()) if t]
    texts = [t for t, _, _ in tokens]
    runs = loops(texts, guards.loop_repeats, guards.loop_max_ngram, long_ngram=guards.loop_long_ngram)
    if not grams or not set(grams) <= {tuple(texts[start : start + size]) for start, size, _ in runs}:
        return False
    for start, size, copies in runs:
        spans = [(tokens[first][1], tokens[first + size - 1][2]) for first in range(start, start + size * copies, size)]
        longest = max(b - a for a, b in spans)
        long = size >= guards.loop_long_ngram
        share = guards.repeat_min_share_long if long else guards.repeat_min_share
        per_word = guards.repeat_min_word_seconds_long if long else guards.repeat_min_word_seconds
        for a, b in spans:
            length = b - a
            if length < share * longest or length < per_word * size:
                return False
            if sum(max(0.0, min(b, y) - max(a, x)) for x, y in speech) < 0.5 * length:
                return False
    return True


def context_fallback_reason(
    figures: DecodeFigures, guards: DecodeGuards, *, coverage: bool = True, heard_repeat: bool = False
) -> str | None:
    """Return why a fitted-context decode must be re-run with the full context, or None to keep it.

    The checks run in the order of ``FALLBACK_REASONS``; the first that fails names the reason.
    ``coverage=False`` leaves out ``too_few_words``: the caller continues a decode that stopped early
    and judges the words it misses afterwards (`stopped_early`). ``heard_repeat=True``: leave repeats
    to `said_again` (the caller judges them after alignment); running into the token budget is still a loop.
    """
    words = figures.words
    if figures.truncated or (not heard_repeat and guards.loops_in(figures)):
        return "repetition"
    if figures.compression_ratio > guards.compression_ratio_threshold:
        return "compression_ratio"
    if figures.avg_logprob < guards.log_prob_threshold:
        return "avg_logprob"
    if figures.no_speech_prob > guards.no_speech_threshold:
        return "no_speech"
    if (
        coverage
        and figures.voiced_seconds >= guards.min_voiced_seconds
        and len(words) < guards.min_words_per_voiced_second * figures.voiced_seconds
    ):
        return "too_few_words"
    return None
