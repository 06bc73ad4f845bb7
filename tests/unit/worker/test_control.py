"""Control records: switch commands and replica status round-trip; bad records are refused, not guessed."""

from __future__ import annotations

import orjson
import pytest

from stream_app.inference.exceptions import PrecisionError
from stream_app.worker.control import (
    ControlMessageError,
    ReplicaStatus,
    SwitchCommand,
    decode_control,
    encode_command,
    encode_status,
    live,
    switch_command,
)


def test_switch_command_round_trips() -> None:
    command = switch_command("base", "INT8", now=12.5)
    decoded = decode_control(encode_command(command))
    assert decoded == SwitchCommand("base", "int8", command.id, 12.5)


def test_switch_without_precision_keeps_the_configured_one() -> None:
    decoded = decode_control(encode_command(switch_command("tiny.en")))
    assert isinstance(decoded, SwitchCommand)
    assert decoded.precision is None


def test_aliases_are_normalised_on_the_wire() -> None:
    decoded = decode_control(orjson.dumps({"type": "switch", "model": "base", "precision": "fp32", "id": "x"}))
    assert isinstance(decoded, SwitchCommand)
    assert (decoded.precision, decoded.id, decoded.issued_at) == ("float32", "x", 0.0)


def test_int4_is_refused_before_it_is_published() -> None:
    with pytest.raises(PrecisionError, match="4-bit"):
        switch_command("base", "int4")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"type": "reboot"}', "unknown control record type"),
        (b'{"type": "switch"}', "'model'"),
        (b'{"type": "switch", "model": "  "}', "'model'"),
        (b'{"type": "switch", "model": "base", "precision": 8}', "'precision'"),
        (b'{"type": "switch", "model": "base", "precision": "int4"}', "4-bit"),
        (b'{"type": "switch", "model": "base", "precision": "int9"}', "unknown precision"),
        (b'{"type": "switch", "model": "base", "issued_at": "now"}', "issued_at"),
        (b'{"type": "status"}', "'replica'"),
        (b'{"type": "status", "replica": "r1", "active": "base"}', "'active'"),
        (b'{"type": "status", "replica": "r1", "loaded": {}}', "'loaded'"),
        (b"", "not JSON"),
        (None, "not JSON"),
    ],
)
def test_bad_records_are_refused_with_the_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(ControlMessageError, match=reason):
        decode_control(value)


def test_status_round_trips_and_says_what_it_serves() -> None:
    status = ReplicaStatus(
        replica="r1",
        active={"model": "base", "precision": "int8", "device": "cpu"},
        loaded=[{"model": "base", "precision": "int8", "active": True}],
        command_id="c1",
        at=3.0,
    )
    decoded = decode_control(encode_status(status))
    assert decoded == status
    assert status.serves("base", "int8")
    assert status.serves("base", None)
    assert not status.serves("base", "float32")
    assert not status.serves("tiny.en", None)
    assert not ReplicaStatus("r2", None).serves("base", None)


def test_stopped_replicas_are_not_live() -> None:
    statuses = {"r1": ReplicaStatus("r1", None), "r2": ReplicaStatus("r2", None, state="stopped")}
    assert list(live(statuses)) == ["r1"]
