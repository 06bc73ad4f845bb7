"""Which windows of a decode group share one alignment call."""

from __future__ import annotations

import ctranslate2
import numpy as np

from stream_app.inference.alignment import HostRows, rows_selectable, same_length_groups


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
