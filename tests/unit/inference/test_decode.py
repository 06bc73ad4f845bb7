"""The batched decoder's scores: a decode forced through final words is judged on its new tokens alone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from faster_whisper import WhisperModel, decode_audio
from faster_whisper.tokenizer import Tokenizer

from stream_app.inference.decode import BatchDecoder
from stream_app.inference.models import resolve_model


@pytest.fixture(scope="module")
def model() -> WhisperModel:
    path = resolve_model("tiny.en", Path("~/.cache/stream-app/models").expanduser())
    return WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=1, local_files_only=True)


@dataclass
class Jfk:
    decoder: BatchDecoder
    tokenizer: Tokenizer
    prompt: list[int]
    audio: np.ndarray


@pytest.fixture
def jfk(model: WhisperModel, jfk_path: Path) -> Jfk:
    decoder = BatchDecoder(model)
    tokenizer = decoder.tokenizer("en")
    return Jfk(decoder, tokenizer, decoder.prompt(tokenizer, ""), decode_audio(str(jfk_path)))


@contextmanager
def scored(model: WhisperModel, prompt: list[int], new: list[int], new_logprob: float) -> Iterator[None]:
    """Make ``model``'s ``generate`` answer with ``new`` after each prefix, scored as CTranslate2 scores it."""
    real = model.model
    model.model = _ScoredModel(model, prompt, new, new_logprob)  # type: ignore[assignment]
    try:
        yield
    finally:
        model.model = real


def test_a_decode_forced_through_its_own_start_goes_on_the_same_way_and_scores_fewer_tokens(jfk: Jfk) -> None:
    # the arithmetic below rests on this: forced through its own start, a decode goes on with the same
    # tokens, and only those new tokens are scored (a longer prefix, fewer tokens, a sum nearer 0)
    decoder, audio, prompt = jfk.decoder, jfk.audio, jfk.prompt
    free = decoder.decode([audio], 1200, [prompt], "en")
    tokens = free.greedy[0].tokens
    assert "ask not what your country can do for you" in free.greedy[0].text
    free_sum = free.greedy[0].avg_logprob * (len(tokens) + 1)
    sums = []
    for forced in (5, 12, 20):
        group = decoder.decode([audio], 1200, [prompt], "en", prefixes=[tokens[:forced]])
        greedy = group.greedy[0]
        assert greedy.tokens == tokens[forced:]  # forced through its own start, the decode goes on the same way
        sums.append(greedy.avg_logprob * (len(greedy.tokens) + 1))
    assert all(free_sum <= s <= 0 for s in sums)  # fewer tokens scored: a smaller (negative) sum
    assert sums == sorted(sums)


class _ScoredModel:
    """The real model, its ``generate`` answering with a fixed continuation scored as CTranslate2 scores it."""

    def __init__(self, model: WhisperModel, prompt: list[int], new: list[int], new_logprob: float) -> None:
        self._model, self.prompt, self.new, self.new_logprob = model.model, prompt, new, new_logprob

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def generate(self, encoder_output: Any, prompts: list[list[int]], **_: Any) -> list[Any]:
        class Result:
            pass

        out = []
        for prompt in prompts:
            prefix = prompt[len(self.prompt) :]
            result = Result()
            result.sequences_ids = [prefix + self.new]  # type: ignore[attr-defined]
            result.scores = [self.new_logprob / (len(prefix) + len(self.new))]  # type: ignore[attr-defined]
            result.no_speech_prob = 0.01  # type: ignore[attr-defined]
            out.append(result)
        return out


def test_the_average_log_probability_of_a_forced_decode_is_that_of_its_new_tokens(
    model: WhisperModel, jfk: Jfk
) -> None:
    new = jfk.tokenizer.encode(" thank you for watching")
    forced = jfk.decoder.prefix(jfk.tokenizer, "and so my fellow Americans ask not what your country can do for you")
    with scored(model, jfk.prompt, new, new_logprob=-14.0):
        group = jfk.decoder.decode([jfk.audio], 1200, [jfk.prompt], "en", prefixes=[forced])
    greedy = group.greedy[0]
    assert greedy.tokens == new
    # -14 over the new tokens: below faster-whisper's log_prob_threshold (-1.0), so the guards hear it;
    # averaged over the forced prefix too it read as -0.5 and passed
    assert greedy.avg_logprob == pytest.approx(-14.0 / (len(new) + 1))


def test_a_window_s_token_room_does_not_depend_on_the_prefixes_of_the_windows_beside_it(
    model: WhisperModel, jfk: Jfk
) -> None:
    long_text = jfk.tokenizer.encode(" word" * 150)  # 150 new tokens: room for them alone, not after a 100-token prefix
    forced = jfk.decoder.prefix(jfk.tokenizer, "so" + " and so" * 50)
    assert len(forced) > 90
    with scored(model, jfk.prompt, long_text, new_logprob=-15.0):
        group = jfk.decoder.decode([jfk.audio] * 2, 1200, [jfk.prompt] * 2, "en", prefixes=[[], forced])
    alone, beside = group.greedy
    assert alone.tokens == long_text and not alone.truncated  # cut at 224 - 100 tokens before, as "repetition"
    assert beside.truncated  # 100 forced + 150 new passes its own room
