from __future__ import annotations

import threading
from typing import Any

import pytest
from confluent_kafka import Producer

from stream_app.clients.exceptions import TailError
from stream_app.clients.tail import TranscriptTail, collect_final_transcript
from stream_app.testing.segments import make_segment
from stream_app.wire.segment import TranscriptSegment
from stream_app.wire.segment_codec import encode_segment

pytestmark = pytest.mark.integration


def _seg(
    stream: str, index: int, text: str, *, final: bool = True, revision: int = 0, eos: bool = False
) -> TranscriptSegment:
    return make_segment(stream, index, text, final=final, revision=revision, eos=eos)


def _produce(conf: dict[str, Any], topic: str, segments: list[TranscriptSegment], garbage: bool = False) -> None:
    producer = Producer(conf)
    if garbage:
        producer.produce(topic, key=segments[0].stream_id.encode(), value=b"{not a segment")
    for segment in segments:
        producer.produce(topic, key=segment.stream_id.encode(), value=encode_segment(segment))
    assert producer.flush(30) == 0


def test_collect_final_transcript_filters_dedupes_and_stops_at_end(
    fresh_topic: str, producer_conf: dict[str, Any], consumer_conf: dict[str, Any]
) -> None:
    segments = [
        _seg("a", 0, " And so my", final=False),
        _seg("b", 0, " other stream"),
        _seg("a", 0, " And so my fellow Americans,", revision=1),
        _seg("a", 0, " And so my fellow Americans,", revision=1),
        _seg("a", 1, " ask not what your country can do for you.", eos=True),
    ]
    _produce(producer_conf, fresh_topic, segments, garbage=True)
    result = collect_final_transcript(consumer_conf, fresh_topic, "a", timeout=30.0)
    assert result.complete
    assert result.text == "And so my fellow Americans, ask not what your country can do for you."


def test_tail_from_the_end_sees_only_new_segments(
    fresh_topic: str, producer_conf: dict[str, Any], consumer_conf: dict[str, Any]
) -> None:
    _produce(producer_conf, fresh_topic, [_seg("c", 0, " old")])
    with TranscriptTail(consumer_conf, fresh_topic, stream_id="c", from_beginning=False) as tail:
        writer = threading.Thread(target=_produce, args=(producer_conf, fresh_topic, [_seg("c", 1, " new", eos=True)]))
        writer.start()
        seen = []
        for segment in tail.segments(timeout=30.0):
            seen.append(segment.text)
            if segment.end_of_stream:
                break
        writer.join()
    assert seen == [" new"]


def test_missing_topic_is_a_clear_error(consumer_conf: dict[str, Any]) -> None:
    with pytest.raises(TailError, match="does not exist"):
        TranscriptTail(consumer_conf, "no-such-topic-for-tail", topic_wait=1.0)
