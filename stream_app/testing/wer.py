"""Word error rate with the normalisation every comparison in this project uses."""

from __future__ import annotations

import re

import jiwer

_PUNCT = re.compile(r"[^\w\s']")
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Lower case, no punctuation, single spaces: how Whisper writes a word should not count as an error."""
    text = _PUNCT.sub(" ", text.lower()).replace("'", "")
    return _SPACE.sub(" ", text).strip()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER of ``hypothesis`` against ``reference`` after `normalize`."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return float(jiwer.wer(ref, hyp))


def corpus_wer(references: list[str], hypotheses: list[str]) -> float:
    """WER over a corpus: errors summed over all files, divided by all reference words."""
    refs = [normalize(r) for r in references]
    hyps = [normalize(h) for h in hypotheses]
    return float(jiwer.wer(refs, hyps))


def boundary_repeats(reference: str, hypothesis: str, max_ngram: int = 5) -> int:
    """Count phrases of 1 to ``max_ngram`` words the hypothesis says twice in a row where the reference does not.

    A window boundary that doubles text shows up as a phrase followed by itself ("for you for you",
    "ask not what ask not what"). Each position of the hypothesis counts at most once (the longest
    repeat there), and a repeat the reference itself makes is not counted.
    """
    ref = normalize(reference).split()
    hyp = normalize(hypothesis).split()

    def repeats(words: list[str]) -> set[tuple[str, ...]]:
        found: set[tuple[str, ...]] = set()
        for n in range(1, max_ngram + 1):
            for i in range(len(words) - 2 * n + 1):
                if words[i : i + n] == words[i + n : i + 2 * n]:
                    found.add(tuple(words[i : i + n]))
        return found

    allowed = repeats(ref)
    count, i = 0, 0
    while i < len(hyp):
        step = 1
        for n in range(max_ngram, 0, -1):
            phrase = tuple(hyp[i : i + n])
            if len(phrase) == n and list(phrase) == hyp[i + n : i + 2 * n] and phrase not in allowed:
                count += 1
                step = 2 * n
                break
        i += step
    return count
