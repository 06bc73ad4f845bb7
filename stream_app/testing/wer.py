"""Word error rate with the normalisation every comparison in this project uses."""

from __future__ import annotations

import itertools
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


def boundary_repeats(reference: str, hypothesis: str) -> int:
    """Count adjacent repeated words in the hypothesis that the reference does not repeat there.

    A word doubled at a window boundary ("for for you") shows up as a bigram ``w w`` that the
    reference does not contain.
    """
    ref_words = normalize(reference).split()
    ref_pairs = {(a, b) for a, b in itertools.pairwise(ref_words) if a == b}
    hyp_words = normalize(hypothesis).split()
    return sum(1 for a, b in itertools.pairwise(hyp_words) if a == b and (a, b) not in ref_pairs)
