"""`publish` applies the codec's stream id rules before it sends anything, and words refusals usefully."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from stream_app.cli.main import main
from stream_app.clients.refusals import Refusals
from stream_app.wire.chunk import ChunkFormat
from stream_app.wire.chunk_codec import MAX_STREAM_ID_LENGTH, decode_chunk, encode_chunk
from stream_app.wire.exceptions import ChunkRejected

FMT = ChunkFormat("s16le", 16_000, 1)


@pytest.mark.parametrize("stream_id", [" desk mic", "desk-mic ", "x" * (MAX_STREAM_ID_LENGTH + 44), "tab\there", ""])
def test_publish_refuses_a_stream_id_the_workers_would_dead_letter(
    stream_id: str, jfk_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAM_APP_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")  # nothing is sent: no broker needed
    assert main(["publish", str(jfk_path), "--stream-id", stream_id]) == 2
    assert "--stream-id refused before sending" in capsys.readouterr().err


@pytest.mark.parametrize("stream_id", [" edge", "x" * (MAX_STREAM_ID_LENGTH + 1), "bell\a", "ok id with spaces", "ok"])
def test_the_encoder_and_the_decoder_apply_the_same_rules(stream_id: str) -> None:
    try:
        key, value, headers = encode_chunk(stream_id, 0, 0, b"\0\0", FMT, True, "urn:test")
    except ChunkRejected as refused:
        assert refused.reason == "bad_stream_id"
        with pytest.raises(ChunkRejected, match="bad_stream_id"):
            decode_chunk(stream_id.encode(), b"\0\0", _headers(), max_bytes=1024)
        return
    assert decode_chunk(key, value, headers, max_bytes=1024).stream_id == stream_id


def _headers() -> list[tuple[str, bytes]]:
    return encode_chunk("valid", 0, 0, b"\0\0", FMT, True, "urn:test")[2]


def test_refusals_are_summed_and_advised() -> None:
    refusals = Refusals(chunks=Counter({"after_end": 66}), windows=Counter({"poison_window": 1}))
    assert refusals.refused_chunks == 66
    assert refusals.summary() == "after_end: 66, poison_window: 1 window(s)"
    assert refusals.advice() == [
        "after_end: the stream id ended recently (within streaming.ended_retention, 5 min by default); "
        "publish under a new stream id"
    ]


def test_a_producer_failing_fatally_is_a_message_and_exit_status_1_not_a_traceback(
    jfk_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from confluent_kafka import KafkaError, KafkaException

    from stream_app.cli import publish

    def fatal(*_: object, **__: object) -> None:
        raise KafkaException(KafkaError(KafkaError._FATAL, "idempotent producer fenced", fatal=True))

    monkeypatch.setattr(publish, "_send", fatal)
    assert main(["publish", str(jfk_path), "--connect-timeout", "0", "--confirm", "0"]) == 1
    assert "idempotent producer fenced" in capsys.readouterr().err
