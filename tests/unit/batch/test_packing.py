from __future__ import annotations

import numpy as np

from stream_app.batch.packing import SAMPLE_RATE, PackingPolicy, WindowPacker, cut_points, words_by_piece
from stream_app.inference.types import Word


def tone(seconds: float, amplitude: float = 0.5) -> np.ndarray:
    return np.full(int(seconds * SAMPLE_RATE), amplitude, dtype=np.float32)


def test_short_file_is_one_piece() -> None:
    assert cut_points(tone(2.0), PackingPolicy()) == [(0, 2 * SAMPLE_RATE)]


def test_long_file_is_cut_at_the_quiet_moment_before_the_limit() -> None:
    audio = tone(70.0)
    quiet = int(28.5 * SAMPLE_RATE)
    audio[quiet : quiet + SAMPLE_RATE // 10] = 0.0  # 100 ms of silence 1.5 s before the limit
    spans = cut_points(audio, PackingPolicy(window_seconds=30.0, search_seconds=3.0))
    assert spans[0][0] == 0 and quiet <= spans[0][1] < quiet + SAMPLE_RATE // 10
    assert all(end - start <= 30 * SAMPLE_RATE for start, end in spans)
    assert [s for s, _ in spans[1:]] == [e for _, e in spans[:-1]]  # contiguous, nothing lost
    assert spans[-1][1] == len(audio)


def test_short_files_share_windows_with_gaps() -> None:
    packer = WindowPacker(PackingPolicy(window_seconds=10.0, gap_seconds=1.0, pack=True))
    windows = []
    for file_id in range(5):
        windows += list(packer.add_file(file_id, tone(3.0)))
    windows += list(packer.flush())
    # 3 + 1 + 3 = 7 s fits, adding 1 + 3 more would be 11 s: two files per window
    assert [[p.file_id for p in w.pieces] for w in windows] == [[0, 1], [2, 3], [4]]
    first = windows[0]
    assert [p.window_offset for p in first.pieces] == [0.0, 4.0]
    assert len(first.samples) == 7 * SAMPLE_RATE
    assert np.all(first.samples[3 * SAMPLE_RATE : 4 * SAMPLE_RATE] == 0.0)


def test_without_packing_every_piece_has_its_own_window() -> None:
    packer = WindowPacker(PackingPolicy(pack=False))
    windows = [w for i in range(3) for w in packer.add_file(i, tone(1.0))] + list(packer.flush())
    assert [len(w.pieces) for w in windows] == [1, 1, 1]


def test_pieces_of_a_long_file_keep_their_file_offsets() -> None:
    packer = WindowPacker(PackingPolicy(window_seconds=10.0, search_seconds=0.0))
    windows = list(packer.add_file(7, tone(25.0))) + list(packer.flush())
    assert [(p.piece_index, p.file_offset, p.duration) for w in windows for p in w.pieces] == [
        (0, 0.0, 10.0),
        (1, 10.0, 10.0),
        (2, 20.0, 5.0),
    ]


def test_words_go_back_to_their_files_in_file_time() -> None:
    packer = WindowPacker(PackingPolicy(window_seconds=30.0, gap_seconds=1.0, pack=True))
    list(packer.add_file(0, tone(2.0)))
    list(packer.add_file(1, tone(2.0)))
    (window,) = packer.flush()
    words = [
        Word(0.2, 0.8, "hello", 0.9),
        Word(3.1, 3.6, "world", 0.8),  # second file starts at 3.0 in the window
        Word(5.2, 5.9, "beyond", 0.5),  # past the last piece and its half gap: dropped
    ]
    first, second = words_by_piece(words, 0.0, window, gap=1.0)
    assert first == [Word(0.2, 0.8, "hello", 0.9)]
    assert second == [Word(0.1, 0.6, "world", 0.8)]


def test_the_configured_policy_follows_the_speech_unless_vad_is_off() -> None:
    from stream_app.config import load_settings

    policy = PackingPolicy.from_settings(load_settings(None, env={}), pack=True)
    assert policy.pack and policy.follow_speech and policy.speech.max_seconds == 20.0
    off = PackingPolicy.from_settings(load_settings(None, env={"STREAM_APP_STREAMING__VAD": "false"}))
    assert not off.follow_speech and not off.pack
    long = load_settings(
        None, env={"STREAM_APP_STREAMING__MAX_WINDOW": "28s", "STREAM_APP_STREAMING__SPEECH_LEAD": "2s"}
    )
    fitted = PackingPolicy.from_settings(long).speech
    assert fitted.max_seconds + fitted.lead + fitted.tail <= PackingPolicy().window_seconds  # a piece fits a window


def test_a_word_running_into_the_gap_ends_with_its_file() -> None:
    packer = WindowPacker(PackingPolicy(window_seconds=30.0, gap_seconds=1.0, pack=True))
    list(packer.add_file(0, tone(2.0)))
    list(packer.add_file(1, tone(2.0)))
    (window,) = packer.flush()
    words = [
        Word(1.7, 2.4, "late", 0.9),  # midpoint in the first piece, end in the gap after it
        Word(2.9, 3.3, "early", 0.9),  # starts in the gap before the second piece
        Word(4.8, 5.4, "last", 0.9),  # runs past the end of the window's audio
    ]
    first, second = words_by_piece(words, 0.0, window, gap=1.0)
    assert first == [Word(1.7, 2.0, "late", 0.9)]  # held within the file's 2 s
    assert second == [Word(0.0, 0.3, "early", 0.9), Word(1.8, 2.0, "last", 0.9)]
