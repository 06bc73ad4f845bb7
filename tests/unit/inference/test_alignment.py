"""Which windows of a decode group share one alignment call."""

from __future__ import annotations

from pathlib import Path

import ctranslate2
import numpy as np
import pytest
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer

from stream_app.inference.alignment import (
    APPEND_PUNCTUATIONS,
    PREPEND_PUNCTUATIONS,
    AligningWhisperModel,
    HostRows,
    align_words,
    rows_selectable,
    same_length_groups,
)
from stream_app.inference.models import resolve_model

THE_DOG = [464, 3290]  # " The dog" in tiny.en's vocabulary


def test_windows_are_aligned_together_only_with_decodes_of_their_token_count() -> None:
    tokens = [[1, 2, 3], [], [4, 5], [6, 7, 8], [9, 10]]
    assert same_length_groups(tokens) == [[0, 3], [2, 4]]  # the empty decode is not aligned at all


def test_no_window_is_aligned_when_none_decoded_text() -> None:
    assert same_length_groups([[], []]) == []


def test_selected_rows_keep_their_encoder_output_in_order() -> None:
    output = np.arange(4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2)
    picked = HostRows(ctranslate2.StorageView.from_array(output)).pick([3, 1])
    assert picked.device == "cpu" and list(picked.shape) == [2, 3, 2]
    assert np.array_equal(np.asarray(picked), output[[3, 1]])


def test_a_bfloat16_encoder_output_keeps_its_type() -> None:
    output = ctranslate2.StorageView.from_array(np.ones((3, 2, 2), np.float32)).to(ctranslate2.DataType.bfloat16)
    picked = HostRows(output).pick([2])
    assert picked.dtype == ctranslate2.DataType.bfloat16 and list(picked.shape) == [1, 2, 2]
    assert rows_selectable(output)


def test_one_host_copy_serves_every_pick() -> None:
    output = np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 2, 2)
    rows = HostRows(ctranslate2.StorageView.from_array(output))
    assert np.array_equal(np.asarray(rows.pick([0, 2])), output[[0, 2]])
    assert np.array_equal(np.asarray(rows.pick([1])), output[[1]])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[AligningWhisperModel, Tokenizer]:
    path = resolve_model("tiny.en", tmp_path_factory.mktemp("models"))
    model = AligningWhisperModel(str(path), compute_type="int8", cpu_threads=1, local_files_only=True)
    return model, Tokenizer(model.hf_tokenizer, False, task="transcribe", language="en")


def encoded(model: WhisperModel, windows: int) -> ctranslate2.StorageView:
    return model.model.encode(ctranslate2.StorageView.from_array(np.zeros((windows, 80, 3000), np.float32)))


def test_faster_whisper_s_loop_gives_text_in_a_window_of_one_frame_no_words(
    tiny: tuple[AligningWhisperModel, Tokenizer],
) -> None:
    # the remainder faster-whisper's loop decodes when a window ends a frame after its last segment
    model, tokenizer = tiny
    remainder = [[{"seek": 0, "start": 0.0, "end": 0.01, "tokens": THE_DOG}]]
    output = encoded(model, 1)
    model.add_word_timestamps(remainder, tokenizer, output, 1, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS, 0.0)
    assert remainder[0][0]["words"] == []
    # faster-whisper 1.2.1 on this runtime fails the whole decode there (when it stops, drop AligningWhisperModel)
    with pytest.raises(IndexError):
        WhisperModel.find_alignment(model, tokenizer, [THE_DOG], encoded(model, 1), 1)


def test_a_window_of_one_frame_leaves_the_others_of_its_call_aligned(
    tiny: tuple[AligningWhisperModel, Tokenizer],
) -> None:
    model, tokenizer = tiny
    short, whole = model.find_alignment(tokenizer, [THE_DOG, THE_DOG], encoded(model, 2), [1, 3000])
    assert short == [] and [w["word"] for w in whole] == ["The", " dog"]


def test_the_batched_path_gives_a_window_of_one_frame_no_words(tiny: tuple[AligningWhisperModel, Tokenizer]) -> None:
    _, tokenizer = tiny
    model = WhisperModel(str(resolve_model("tiny.en", Path("."))), compute_type="int8", cpu_threads=1)  # any model
    pieces = [[{"start": 0.0, "end": 0.01, "tokens": THE_DOG}], [{"start": 0.0, "end": 1.0, "tokens": THE_DOG}]]
    short, whole = align_words(model, tokenizer, encoded(model, 2), pieces, [1, 3000])
    assert short == [[]] and [w["word"] for w in whole[0]] == ["The", " dog"]
