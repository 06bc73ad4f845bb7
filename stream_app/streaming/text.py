"""Word-level text rules of the merger: normalisation and segment text."""

from __future__ import annotations

import re
from collections.abc import Sequence

from stream_app.inference.types import Word

_NOT_WORD = re.compile(r"[^\w]+", re.UNICODE)


def normalise(text: str) -> str:
    """Compare words as lower case without punctuation (``" Country."`` equals ``"country"``)."""
    return _NOT_WORD.sub("", text).lower()


def join_words(words: Sequence[Word]) -> str:
    """Segment text: the words separated by single spaces (whisper's leading spaces removed)."""
    return " ".join(w.text.strip() for w in words if w.text.strip())
