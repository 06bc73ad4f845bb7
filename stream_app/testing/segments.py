"""Transcript segments made by hand, for tests of whatever reads the output topic."""

from __future__ import annotations

from stream_app.wire.segment import TranscriptSegment


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
) -> TranscriptSegment:
    """Build a schema-valid segment ``index`` of ``stream``: every ``seconds``, ``speech`` seconds long."""
    return TranscriptSegment(
        stream_id=stream,
        segment_id=f"{stream}:{index}",
        index=index,
        revision=revision,
        is_final=final,
        start=index * seconds,
        end=index * seconds + speech,
        text=text,
        words=(),
        model="tiny.en",
        precision="int8",
        avg_logprob=-0.2,
        no_speech_prob=0.01,
        confidence=0.9,
        end_of_stream=eos,
    )
