"""Transcript segments made by hand, for tests of whatever reads the output topic."""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import Producer

from stream_app.clients.kafka_config import producer_config
from stream_app.config.settings import KafkaSettings
from stream_app.inference.types import Word
from stream_app.wire.segment import Gap, TranscriptSegment
from stream_app.wire.segment_codec import encode_segment


def make_segment(
    stream: str,
    index: int,
    text: str,
    *,
    final: bool = True,
    revision: int = 0,
    eos: bool = False,
    seconds: float = 4.0,
    speech: float = 3.5,
    timed: bool = False,
    gaps: tuple[Gap, ...] = (),
) -> TranscriptSegment:
    """Build a schema-valid segment ``index`` of ``stream``: every ``seconds``, ``speech`` seconds long.

    With ``timed`` its words get times spread evenly over the speech (for subtitles and captions).
    """
    start = index * seconds
    tokens = text.split()
    step = speech / max(1, len(tokens))
    words = tuple(
        Word(round(start + i * step, 3), round(start + (i + 1) * step, 3), f" {token}", 0.9)
        for i, token in enumerate(tokens)
    )
    return TranscriptSegment(
        stream_id=stream,
        segment_id=f"{stream}:{index}",
        index=index,
        revision=revision,
        is_final=final,
        start=start,
        end=start + speech,
        text=text,
        words=words if timed else (),
        model="tiny.en",
        precision="int8",
        avg_logprob=-0.2,
        no_speech_prob=0.01,
        confidence=0.9,
        end_of_stream=eos,
        gaps=gaps,
    )


def produce_segments(kafka: KafkaSettings, topic: str, segments: Iterable[TranscriptSegment]) -> None:
    """Write segments to a transcripts topic as a worker does (key = stream id, JSON value), acknowledged."""
    producer = Producer(producer_config(kafka, client_id="stream-app-test-segments"))
    for segment in segments:
        producer.produce(topic, key=segment.stream_id.encode(), value=encode_segment(segment))
    if producer.flush(30.0):
        raise RuntimeError(f"segments not acknowledged by {topic} within 30 s")
