from __future__ import annotations

from stream_app.bench.word_lag import PublishedSegment, word_lags
from stream_app.inference.types import Word
from stream_app.wire.segment import TranscriptSegment


def segment(sid: str, final: bool, revision: int, *words: tuple[str, float, float]) -> TranscriptSegment:
    ws = tuple(Word(s, e, t, 0.9) for t, s, e in words)
    return TranscriptSegment(
        stream_id="s",
        segment_id=sid,
        index=0,
        revision=revision,
        is_final=final,
        start=ws[0].start if ws else 0.0,
        end=ws[-1].end if ws else 0.0,
        text=" ".join(w.text for w in ws),
        words=ws,
        model="m",
        precision="int8",
        avg_logprob=-0.1,
        no_speech_prob=0.0,
        confidence=0.9,
    )


def test_a_word_is_emitted_when_a_preview_first_shows_it_and_final_when_its_final_segment_does() -> None:
    origin = 1_000_000  # ms at which stream time 0 reached the broker
    published = [
        PublishedSegment(segment("s:0:0", False, 0, ("and", 0.2, 0.4)), origin + 1_500),
        PublishedSegment(segment("s:0:0", False, 1, ("and", 0.2, 0.4), ("so", 0.5, 0.8)), origin + 2_000),
        PublishedSegment(segment("s:0:0", True, 0, ("And", 0.25, 0.4), ("so,", 0.5, 0.8)), origin + 3_000),
        PublishedSegment(segment("s:0:0", True, 0, ("And", 0.25, 0.4), ("so,", 0.5, 0.8)), origin + 9_000),  # replay
    ]
    lags = word_lags(published, origin)
    assert lags.emission == [1.1, 1.2]  # "and" shown at 1.5 s, heard by 0.4 s; "so" shown at 2.0 s, heard by 0.8 s
    assert lags.final == [2.6, 2.2]


def test_a_preview_with_another_word_there_does_not_count_as_showing_it() -> None:
    origin = 0
    published = [
        PublishedSegment(segment("s:0:1", False, 0, ("fellows", 1.0, 1.4)), 2_000),
        PublishedSegment(segment("s:0:1", True, 0, ("fellow", 1.0, 1.4)), 4_000),
    ]
    assert word_lags(published, origin).emission == [2.6]
