"""Whole streams through buffer and merger with a fake recogniser that reads words out of the samples."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest

from stream_app.inference.types import WindowTranscript, Word
from stream_app.streaming.session import StreamSession, transcribe_chunks
from stream_app.streaming.windowing import Window, WindowingConfig
from stream_app.testing.tables import state_fingerprint, stored_and_restored
from stream_app.wire.chunk import AudioChunk
from stream_app.wire.segment import TranscriptSegment

RATE = 16_000
SENTENCE = "and so my fellow americans ask not what your country can do for you ask what you can do for your country"
VOCAB = sorted(set(SENTENCE.split()))
MIN_FRAGMENT = round(0.2 * RATE)  # shorter pieces of a word at a window edge are not recognised


def speech(text: str = SENTENCE, pause_after: int = 9, pause_s: float = 3.0) -> npt.NDArray[np.float32]:
    """Each word is 0.4 s of a constant value naming it, 0.15 s apart; one long pause mid-way."""
    parts = [np.zeros(round(0.3 * RATE), dtype=np.float32)]
    for i, word in enumerate(text.split()):
        parts.append(np.full(round(0.4 * RATE), (VOCAB.index(word) + 1) / 100, dtype=np.float32))
        parts.append(np.zeros(round((pause_s if i == pause_after else 0.15) * RATE), dtype=np.float32))
    return np.concatenate(parts)


def recognise(window: Window) -> WindowTranscript:
    """A deterministic stand-in for Whisper: one word per run of equal non-zero samples."""
    assert not window.is_empty
    samples = window.samples
    found: list[Word] = []
    i = 0
    while i < len(samples):
        if samples[i] == 0:
            i += 1
            continue
        j = i
        while j < len(samples) and samples[j] == samples[i]:
            j += 1
        at_edge = i == 0 or j == len(samples)
        if not (at_edge and j - i < MIN_FRAGMENT):
            text = VOCAB[round(float(samples[i]) * 100) - 1]
            found.append(Word(window.start + i / RATE, window.start + j / RATE, f" {text}", 0.9))
        i = j
    return WindowTranscript(
        words=tuple(found),
        text="".join(w.text for w in found),
        avg_logprob=-0.2,
        no_speech_prob=0.0 if found else 0.95,
        compression_ratio=1.3,
        model="fake",
        precision="int8",
        skipped_silence=not found,
    )


def chunked(audio: npt.NDArray[np.float32], sizes: list[int]) -> list[AudioChunk]:
    out, offset, seq, k = [], 0, 0, 0
    while offset < len(audio):
        n = sizes[k % len(sizes)]
        part = audio[offset : offset + n]
        out.append(AudioChunk("mic-1", seq, offset, part, end_of_stream=offset + n >= len(audio)))
        offset, seq, k = offset + n, seq + 1, k + 1
    return out


def finals(segments: list[TranscriptSegment]) -> list[TranscriptSegment]:
    return [s for s in segments if s.is_final]


def check_transcript(segments: list[TranscriptSegment]) -> None:
    final = finals(segments)
    assert " ".join(s.text for s in final if s.text) == SENTENCE
    assert [s.index for s in final] == list(range(len(final)))
    assert [s.segment_id for s in final] == [f"mic-1:0:{i}" for i in range(len(final))]
    assert [s.end_of_stream for s in segments] == [False] * (len(segments) - 1) + [True]
    words = [w for s in final for w in s.words]
    assert all(a.end <= b.start for a, b in itertools.pairwise(words))  # in order, never twice
    for s in segments:
        if not s.is_final:
            assert s.index >= max((f.index for f in final if f.segment_id == s.segment_id), default=-1)


CONFIGS = {
    "live": WindowingConfig.from_seconds(5.0, 1.0),
    "live-interim": WindowingConfig.from_seconds(5.0, 1.0, 0.5),
    "long": WindowingConfig.from_seconds(8.0, 2.0),
    "no-overlap": WindowingConfig.from_seconds(3.0, 0.0),
    "pause": WindowingConfig.from_seconds(5.0, 1.0, pause_search=2.0),
    "pause-interim": WindowingConfig.from_seconds(4.0, 1.0, 0.5, pause_search=1.6),
    "pause-between-words": WindowingConfig.from_seconds(3.0, 1.0, pause_search=1.2, min_pause=0.1),
}
CHUNKINGS = {"100ms": [1600], "odd": [5923], "mixed": [800, 16000, 321, 7000]}


@pytest.mark.parametrize("config_name", CONFIGS)
@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_stream_gives_every_word_once_in_order(config_name: str, chunking: str) -> None:
    segments = list(transcribe_chunks(chunked(speech(), CHUNKINGS[chunking]), recognise, CONFIGS[config_name]))
    check_transcript(segments)


@pytest.mark.parametrize("config_name", ["live", "long", "pause", "pause-between-words"])
def test_final_segments_do_not_depend_on_chunking(config_name: str) -> None:
    runs = [
        finals(list(transcribe_chunks(chunked(speech(), sizes), recognise, CONFIGS[config_name])))
        for sizes in CHUNKINGS.values()
    ]
    assert runs[0] == runs[1] == runs[2]


@pytest.mark.parametrize("config_name", ["live", "pause"])
def test_no_words_come_out_of_the_long_silence(config_name: str) -> None:
    segments = finals(list(transcribe_chunks(chunked(speech(pause_s=12.0), [1600]), recognise, CONFIGS[config_name])))
    words = [w for s in segments for w in s.words]
    pause_start = next(w.end for w in words if w.text.strip() == "country")
    assert not [w for w in words if pause_start < w.start < pause_start + 11.9]


@pytest.mark.parametrize("config_name", ["live-interim", "pause-interim"])
def test_session_stored_and_restored_mid_stream_gives_the_same_segments(config_name: str) -> None:
    config = CONFIGS[config_name]
    chunks = chunked(speech(), [2400])
    reference = list(transcribe_chunks(chunks, recognise, config))
    for cut in (1, 7, 13, 29, len(chunks) - 1):
        session = StreamSession("mic-1", config)
        got: list[TranscriptSegment] = []
        for chunk in chunks[:cut]:
            got += session.run_windows(session.feed(chunk).windows, recognise)
        session = stored_and_restored(session)
        for chunk in chunks[cut:]:
            got += session.run_windows(session.feed(chunk).windows, recognise)
        assert got == reference


@pytest.mark.parametrize("config_name", ["live", "pause-between-words"])
def test_replayed_chunks_after_a_restore_produce_nothing_new(config_name: str) -> None:
    config = CONFIGS[config_name]
    chunks = chunked(speech(), [4000])
    session = StreamSession("mic-1", config)
    for chunk in chunks[:10]:
        session.run_windows(session.feed(chunk).windows, recognise)
    stored = state_fingerprint(session)
    for chunk in chunks[:10]:  # at-least-once delivery replays what was already applied
        step = session.feed(chunk)
        assert step.applied.duplicates == (chunk.seq,) and step.windows == ()
    assert state_fingerprint(session) == stored


def test_stream_without_end_of_stream_is_closed_by_the_driver() -> None:
    chunks = [AudioChunk(c.stream_id, c.seq, c.offset, c.samples) for c in chunked(speech(), [1600])]
    segments = list(transcribe_chunks(chunks, recognise, CONFIGS["live"]))
    check_transcript(segments)
    assert list(transcribe_chunks(chunks, recognise, CONFIGS["live"], close_at_end=False))[-1].end_of_stream is False


def test_silent_stream_ends_with_one_empty_final_segment() -> None:
    chunks = chunked(np.zeros(3 * RATE, dtype=np.float32), [1600])
    segments = list(transcribe_chunks(chunks, recognise, CONFIGS["no-overlap"]))
    assert [(s.is_final, s.text, s.end_of_stream, s.segment_id) for s in segments] == [(True, "", True, "mic-1:0:0")]


def test_pause_cuts_split_the_stream_between_words() -> None:
    windows: list[Window] = []

    def spy(window: Window) -> WindowTranscript:
        windows.append(window)
        return recognise(window)

    check_transcript(list(transcribe_chunks(chunked(speech(), [1600]), spy, CONFIGS["pause-between-words"])))
    full = CONFIGS["pause-between-words"].window
    cut = [w for w in windows if not w.is_last and w.end_sample - w.start_sample < full]
    assert len(cut) >= len(windows) - 2  # nearly every window ends in a gap between words
    for w in cut:  # the pause cut leaves silence at both ends of the window: no word is cut in two
        assert w.samples[-1] == 0 and w.stable_until_sample < w.end_sample
