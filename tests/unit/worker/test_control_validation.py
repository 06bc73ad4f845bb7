"""Control records from anyone who can write to the topic: any bytes decode or are refused, never crash.

Property-based: hypothesis feeds the decoder arbitrary bytes and arbitrary JSON shaped like our
records; the only error it may raise is the documented `ControlMessageError`. The listener applies
the model allow-list before the engine sees a switch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.config import Settings
from stream_app.config.secrets import Secret
from stream_app.worker.control import (
    ControlListener,
    ControlMessageError,
    ReplicaStatus,
    SwitchCommand,
    decode_control,
    encode_command,
    encode_status,
)

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
MODEL_ENTRY = st.fixed_dictionaries({"model": st.text(min_size=1), "precision": st.sampled_from(["int8", "float32"])})
# A valid value per field: records are mostly valid, so a corrupted field is reached past the checks before it.
VALID = {
    "switch": {
        "model": st.text(min_size=1),
        "precision": st.sampled_from([None, "int8", "fp16", "float32", "int4", "int9"]),
        "id": st.text(),
        "issued_at": FINITE,
    },
    "status": {
        "replica": st.text(min_size=1),
        "state": st.sampled_from(["running", "stopped"]),
        "active": st.none() | st.dictionaries(st.sampled_from(["model", "precision", "device"]), st.text()),
        "loaded": st.lists(MODEL_ENTRY, max_size=3),
        "command_id": st.none() | st.text(),
        "error": st.none() | st.text(),
        "at": FINITE,
    },
}


def _record(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    """Each field valid three times in four, else any JSON value (or absent)."""
    fields = {name: st.one_of(valid, valid, valid, JSON_VALUES) for name, valid in VALID[kind].items()}
    return st.fixed_dictionaries({"type": st.just(kind)}, optional=fields)


RECORDS = _record("switch") | _record("status") | st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=6)


def _decodes_or_is_refused(value: bytes | None) -> SwitchCommand | ReplicaStatus | None:
    try:
        return decode_control(value)
    except ControlMessageError:
        return None


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=256))
def test_any_bytes_decode_or_are_refused(value: bytes) -> None:
    _decodes_or_is_refused(value)


@settings(max_examples=400, deadline=None)
@given(RECORDS)
def test_any_record_shaped_json_decodes_or_is_refused(record: dict[str, Any]) -> None:
    # the stdlib writes what orjson will not: integers past 64 bits, NaN and Infinity
    decoded = _decodes_or_is_refused(json.dumps(record).encode())
    if isinstance(decoded, SwitchCommand):
        assert decoded.model.strip() and isinstance(decoded.id, str) and isinstance(decoded.issued_at, float)
        assert _decodes_or_is_refused(encode_command(decoded)) == decoded
    elif isinstance(decoded, ReplicaStatus):
        assert decoded.replica and isinstance(decoded.at, float)
        assert _decodes_or_is_refused(encode_status(decoded)) == decoded


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b'{"type": "switch", "model": "base", "precision": 5}', "'precision' must be a string"),
        (b'{"type": "switch", "model": ["base"]}', "'model' must be a string"),
        (b'{"type": "switch", "model": "base", "id": 7}', "'id' must be a string"),
        (b'{"type": "switch", "model": "base", "issued_at": true}', "'issued_at' must be a number"),
        (b'{"type": "status", "replica": "r1", "at": "yesterday"}', "'at' must be a number"),
        (b'{"type": "status", "replica": "r1", "state": 1}', "'state' must be a string"),
        (b'{"type": "status", "replica": "r1", "error": {}}', "'error' must be a string"),
        (b'{"type": "status", "replica": "r1", "command_id": 3}', "'command_id' must be a string"),
        (b'{"type": "status", "replica": "r1", "loaded": [1]}', "'loaded' must be a list of objects"),
        (b'{"type": "status", "replica": "r1", "active": {"model": 1}}', "'active' must be an object of strings"),
        (b'{"type": "status", "replica": 1}', "'replica' must be a string"),
        (b"\xff\xfe", "not JSON"),
        (b'{"type": ["switch"]}', "unknown control record type"),
    ],
)
def test_fields_of_the_wrong_type_are_refused_with_the_reason(value: bytes, reason: str) -> None:
    with pytest.raises(ControlMessageError, match=reason):
        decode_control(value)


def test_unknown_extra_fields_are_ignored() -> None:
    decoded = decode_control(b'{"type": "switch", "model": "base", "id": "c", "from_the_future": [1]}')
    assert decoded == SwitchCommand("base", None, "c", 0.0)


# ---- the listener ----------------------------------------------------------------------------------


class FakeEngine:
    """The engine surface the listener uses; records what it was asked to load."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.started = False
        self.on_change: Any = None
        self.switched: list[str] = []

    async def switch(self, model: str, precision: str | None = None) -> None:
        self.switched.append(model)

    def loaded(self) -> list[dict[str, Any]]:
        return []


@pytest.fixture
def engine(settings: Settings, tmp_path: Path) -> FakeEngine:
    (tmp_path / "roots" / "m").mkdir(parents=True)
    nowhere = dataclasses.replace(settings.kafka, bootstrap_servers="127.0.0.1:1")  # statuses are never delivered
    configured = dataclasses.replace(
        settings,
        kafka=nowhere,
        optimization=dataclasses.replace(settings.optimization, model_roots=(str(tmp_path / "roots"),)),
        caching=dataclasses.replace(settings.caching, redis_password=Secret("Redis-PW-7")),
    )
    return FakeEngine(configured)


def _listener(engine: FakeEngine) -> ControlListener:
    return ControlListener(engine.settings.kafka, engine, "r1")  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=128) | RECORDS.map(lambda r: json.dumps(r).encode()))
def test_the_listener_handles_any_record_without_raising(value: bytes) -> None:
    listener = ControlListener.__new__(ControlListener)  # no producer needed: without a loop nothing is applied
    listener._loop = None
    assert listener.handle(value) is None


def test_a_switch_outside_the_roots_never_reaches_the_engine(engine: FakeEngine, tmp_path: Path) -> None:
    listener = _listener(engine)
    asyncio.run(listener._apply(SwitchCommand("/etc", None, "c1", 0.0)))
    assert engine.switched == []
    command_id, error = listener._last_command
    assert command_id == "c1" and error is not None and error.startswith("ModelNotAllowed: ") and "outside" in error
    asyncio.run(listener._apply(SwitchCommand(str(tmp_path / "roots" / "m"), None, "c2", 0.0)))
    asyncio.run(listener._apply(SwitchCommand("tiny.en", None, "c3", 0.0)))
    assert engine.switched == [str((tmp_path / "roots" / "m").resolve()), "tiny.en"]
    assert listener._last_command == ("c3", None)


def test_a_failure_reason_never_carries_a_secret(engine: FakeEngine) -> None:
    async def leaky(model: str, precision: str | None = None) -> None:
        raise RuntimeError("could not reach rediss://app:Redis-PW-7@cache")

    engine.switch = leaky  # type: ignore[method-assign]
    listener = _listener(engine)
    asyncio.run(listener._apply(SwitchCommand("tiny.en", None, "c1", 0.0)))
    assert listener._last_command == ("c1", "RuntimeError: could not reach rediss://app:***@cache")


def test_a_switch_on_another_partition_is_ignored(engine: FakeEngine) -> None:
    """One partition carries the commands, so every replica applies them in one order."""

    async def run() -> None:
        listener = _listener(engine)
        listener._loop = asyncio.get_running_loop()
        value = encode_command(SwitchCommand("tiny.en", None, "c1", 0.0))
        assert listener.handle(value, partition=3) is None
        future = listener.handle(value, partition=0)
        assert future is not None
        await asyncio.wrap_future(future)

    asyncio.run(run())
    assert engine.switched == ["tiny.en"]


def test_commands_queued_behind_a_load_cost_one_load_the_newest(engine: FakeEngine) -> None:
    """A flood of switches while a model loads is served as its newest; the status names it."""
    loads: list[str] = []

    async def slow(model: str, precision: str | None = None) -> None:
        loads.append(model)
        await asyncio.sleep(0.05)

    engine.switch = slow  # type: ignore[method-assign]
    listener = _listener(engine)

    async def run() -> None:
        commands = [SwitchCommand("base" if i % 2 else "tiny.en", None, f"c{i}", 0.0) for i in range(200)]
        await asyncio.gather(*(listener._apply(c) for c in commands))

    asyncio.run(run())
    assert loads == ["tiny.en", "base"]  # the first, then the newest of the 199 that queued behind it
    assert listener._last_command == ("c199", None)


def test_when_the_newest_queued_command_fails_the_one_before_it_is_served(engine: FakeEngine, tmp_path: Path) -> None:
    """The same choice a replica starting then makes (`control_start.start_engine`): the newest that loads."""
    loads: list[str] = []

    async def picky(model: str, precision: str | None = None) -> None:
        await asyncio.sleep(0.01)
        if model == "base":
            raise RuntimeError("base: model.bin is damaged")
        loads.append(model)

    engine.switch = picky  # type: ignore[method-assign]
    listener = _listener(engine)

    async def run() -> None:
        first = asyncio.ensure_future(listener._apply(SwitchCommand("tiny.en", None, "c0", 0.0)))
        await asyncio.sleep(0)
        models = ["large-v3", str(tmp_path / "roots" / "m"), "base"]  # not allowed, allowed, damaged
        queued = [SwitchCommand(m, None, f"c{i}", 0.0) for i, m in enumerate(models, 1)]
        await asyncio.gather(first, *(listener._apply(c) for c in queued))

    asyncio.run(run())
    assert loads == ["tiny.en", str((tmp_path / "roots" / "m").resolve())]  # "base" failed: the one before it
    command_id, error = listener._last_command
    assert command_id == "c3" and error is not None and "damaged" in error
