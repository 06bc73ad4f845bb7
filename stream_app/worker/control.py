"""The control topic: switch commands that every replica sees, and the status each replica reports.

Commands must reach every replica, so the listener is not in the consumer group: a confluent-kafka
consumer in a background thread assigns itself every partition of the control topic where the
replica's start-up read of it ended (`control_start`: a starting replica loads the model last
switched to), commits nothing, and hands switches to the worker's event loop.

Switch commands are obeyed only on partition `COMMAND_PARTITION`, in its offset order: every replica,
running or starting, then sees one order, whatever the writers' clocks say. Commands that arrive while
a model loads are taken together, newest first: the replica serves the newest it can load, as a
replica starting then would (`control_start.start_engine`), and a flood of commands costs one load.
Each replica publishes a status record to the same topic at start, after every model change, and
when it stops; ``read_statuses`` folds those into the latest status per replica (what
`stream-app models list` shows and what `models switch --wait` waits on).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from stream_app.clients.kafka_config import consumer_config, producer_config
from stream_app.config.secrets import redact_text
from stream_app.config.settings import KafkaSettings
from stream_app.inference.engine import InferenceEngine
from stream_app.inference.exceptions import InferenceError
from stream_app.inference.model_roots import ModelNotAllowed, allowed_model
from stream_app.inference.precision import normalize_precision

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
METADATA_RETRY_SECONDS = 2.0
COMMAND_PARTITION = 0  # the one partition whose switch commands are obeyed (one order for every replica)


class ControlMessageError(ValueError):
    """A control record that is not a command or status we understand."""


@dataclass(frozen=True)
class SwitchCommand:
    """Make ``model`` at ``precision`` (default: the configured one) the active model on every replica."""

    model: str
    precision: str | None
    id: str
    issued_at: float


@dataclass(frozen=True)
class ReplicaStatus:
    """What one replica serves: its loaded models and the one new windows go to."""

    replica: str
    active: dict[str, str] | None
    loaded: list[dict[str, Any]] = field(default_factory=list)
    state: str = "running"  # running | stopped
    command_id: str | None = None  # the last switch command this replica applied (or failed)
    error: str | None = None  # why that command failed
    at: float = 0.0

    def serves(self, model: str, precision: str | None) -> bool:
        """Whether new windows go to ``model`` (and ``precision``, when given) on this replica."""
        if self.active is None or self.active.get("model") != model:
            return False
        return precision is None or self.active.get("precision") == precision


# ---- codec (pure) -----------------------------------------------------------------------------


def switch_command(model: str, precision: str | None = None, *, now: float | None = None) -> SwitchCommand:
    """Build a switch command with a fresh id; the precision name is checked here, before it goes out."""
    if not model.strip():
        raise ControlMessageError("a switch needs a model name")
    chosen = normalize_precision(precision) if precision else None
    return SwitchCommand(model.strip(), chosen, uuid.uuid4().hex, time.time() if now is None else now)


def encode_command(command: SwitchCommand) -> bytes:
    """Serialise a switch command as the control topic carries it."""
    return orjson.dumps(
        {
            "type": "switch",
            "model": command.model,
            "precision": command.precision,
            "id": command.id,
            "issued_at": command.issued_at,
        }
    )


def encode_status(status: ReplicaStatus) -> bytes:
    """Serialise a replica's status record."""
    return orjson.dumps(
        {
            "type": "status",
            "replica": status.replica,
            "state": status.state,
            "active": status.active,
            "loaded": status.loaded,
            "command_id": status.command_id,
            "error": status.error,
            "at": status.at,
        }
    )


def decode_control(value: bytes | None) -> SwitchCommand | ReplicaStatus:
    """Parse one control record; whatever the bytes, the only error is `ControlMessageError`.

    Unknown extra fields are ignored (a newer replica may add some); every known field must have
    its documented type.

    Raises:
        ControlMessageError: Not JSON, an unknown type, or a field missing or of the wrong kind.
    """
    try:
        data = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise ControlMessageError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ControlMessageError("a control record is a JSON object")
    kind = data.get("type")
    if kind == "switch":
        return _decode_switch(data)
    if kind == "status":
        return _decode_status(data)
    raise ControlMessageError(f"unknown control record type {_shown(kind)}")


def _decode_switch(data: Mapping[str, Any]) -> SwitchCommand:
    model = _required_text(data, "switch", "model")
    if not model.strip():
        raise ControlMessageError("switch: 'model' must be a non-empty string")
    precision = _text(data, "switch", "precision")
    try:
        chosen = normalize_precision(precision) if precision else None
    except InferenceError as exc:
        raise ControlMessageError(f"switch: {exc}") from exc
    issued = _number(data, "switch", "issued_at")
    command_id = _text(data, "switch", "id") or uuid.uuid4().hex
    return SwitchCommand(model.strip(), chosen, command_id, issued)


def _decode_status(data: Mapping[str, Any]) -> ReplicaStatus:
    replica = _required_text(data, "status", "replica")
    if not replica:
        raise ControlMessageError("status: 'replica' must be a non-empty string")
    active = data.get("active")
    if active is not None and not _is_text_map(active):
        raise ControlMessageError("status: 'active' must be an object of strings or null")
    loaded = data.get("loaded", [])
    if not isinstance(loaded, list) or not all(_is_model_entry(entry) for entry in loaded):
        raise ControlMessageError("status: 'loaded' must be a list of objects with a 'model' and a 'precision'")
    return ReplicaStatus(
        replica=replica,
        active=active,
        loaded=loaded,
        state=_text(data, "status", "state") or "running",
        command_id=_text(data, "status", "command_id"),
        error=_text(data, "status", "error"),
        at=_number(data, "status", "at"),
    )


def _required_text(data: Mapping[str, Any], kind: str, key: str) -> str:
    """Return ``data[key]``, which must be a string."""
    value = data.get(key)
    if not isinstance(value, str):
        raise ControlMessageError(f"{kind}: {key!r} must be a string, not {_shown(value)}")
    return value


def _text(data: Mapping[str, Any], kind: str, key: str) -> str | None:
    """Return ``data[key]`` when it is a string, None when it is absent or null; refuse anything else."""
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ControlMessageError(f"{kind}: {key!r} must be a string or null, not {_shown(value)}")
    return value


def _number(data: Mapping[str, Any], kind: str, key: str) -> float:
    """Return ``data[key]`` as a finite number of seconds (0 when absent); booleans are not numbers."""
    value = data.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ControlMessageError(f"{kind}: {key!r} must be a number, not {_shown(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise ControlMessageError(f"{kind}: {key!r} is out of range") from None
    if not math.isfinite(number):
        raise ControlMessageError(f"{kind}: {key!r} must be finite")
    return number


def _is_text_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) or v is None for v in value.values())


def _is_model_entry(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("model"), str) and isinstance(value.get("precision"), str)


def _shown(value: Any) -> str:
    """Render a bad value for the log: its type and at most 40 characters of it."""
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


def engine_status(engine: InferenceEngine, replica: str, **extra: Any) -> ReplicaStatus:
    """Describe what ``engine`` serves now, as a status record of ``replica``."""
    active = None
    if engine.started:
        key = engine.active
        active = {"model": key.model, "precision": key.precision, "device": key.device}
    return ReplicaStatus(replica=replica, active=active, loaded=engine.loaded(), at=time.time(), **extra)


# ---- the replica side -------------------------------------------------------------------------


class ControlListener:
    """Follow the control topic in a thread; run switches on the worker's loop; publish this replica's status."""

    def __init__(
        self,
        kafka: KafkaSettings,
        engine: InferenceEngine,
        replica: str,
        *,
        resume: Mapping[int, int] | None = None,
        applied: str | None = None,
    ) -> None:
        self.kafka = kafka
        self.engine = engine
        self.replica = replica
        self._resume = dict(resume or {})  # partition -> offset the start-up read ended at
        self._producer = Producer(producer_config(kafka, client_id=f"stream-app-control-{replica}"))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._switching: asyncio.Lock | None = None
        self._pending: list[SwitchCommand] = []  # commands not yet taken (touched on the event loop only)
        self._last_command: tuple[str | None, str | None] = (applied, None)
        self.assigned = threading.Event()  # set once the consumer follows every partition
        self.model_roots = tuple(engine.settings.optimization.model_roots)  # where switches may load from
        self._secrets = engine.settings.secret_values()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start following the topic, handing switches to ``loop``; publish the first status."""
        self._loop = loop
        self.engine.on_change = self.publish_status
        self._thread = threading.Thread(target=self._follow, name="control-listener", daemon=True)
        self._thread.start()  # it publishes the first status once it follows the topic

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and tell the topic this replica is gone."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.engine.on_change = None
        with contextlib.suppress(KafkaException):
            self._send(ReplicaStatus(self.replica, None, [], state="stopped", at=time.time()))
            self._producer.flush(timeout)

    def publish_status(self) -> None:
        """Publish what this replica serves now (thread-safe; called on every engine change)."""
        command_id, error = self._last_command
        try:
            self._send(engine_status(self.engine, self.replica, command_id=command_id, error=error))
        except (KafkaException, BufferError) as exc:
            log.warning("could not publish control status: %s", exc)

    def _send(self, status: ReplicaStatus) -> None:
        self._producer.produce(self.kafka.control_topic, key=self.replica.encode(), value=encode_status(status))
        self._producer.poll(0)

    def _follow(self) -> None:
        consumer = Consumer(consumer_config(self.kafka, group_id=f"stream-app-control-{uuid.uuid4().hex[:12]}"))
        try:
            while not self._stop.is_set() and not self._assign(consumer):
                self._stop.wait(METADATA_RETRY_SECONDS)
            self.publish_status()  # seen by operators only once this replica can hear their commands
            while not self._stop.is_set():
                message = consumer.poll(POLL_SECONDS)
                self._producer.poll(0)
                if message is None or message.error():
                    continue
                try:
                    self.handle(message.value(), message.partition())
                except Exception:  # whatever one record does, the listener keeps following the topic
                    log.exception("control: a record at offset %s could not be handled; skipped", message.offset())
        finally:
            consumer.close()

    def _assign(self, consumer: Consumer) -> bool:
        topic = self.kafka.control_topic
        try:
            meta = consumer.list_topics(topic, timeout=5).topics.get(topic)
        except KafkaException as exc:
            log.warning("control topic %s: %s", topic, exc)
            return False
        if meta is None or meta.error is not None or not meta.partitions:
            log.warning("control topic %s is not there yet; retrying", topic)
            return False
        # explicit end offsets, not OFFSET_END: that resolves lazily and could skip a command sent right now
        try:
            ends = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1] for p in meta.partitions]
        except KafkaException as exc:
            log.warning("control topic %s: %s", topic, exc)
            return False
        # where the start-up read of the topic ended (`control_start`), so nothing in between is missed
        starts = [self._resume.get(p, end) for p, end in zip(meta.partitions, ends, strict=True)]
        consumer.assign([TopicPartition(topic, p, start) for p, start in zip(meta.partitions, starts, strict=True)])
        self.assigned.set()
        return True

    def handle(self, value: bytes | None, partition: int | None = COMMAND_PARTITION) -> Future[Any] | None:
        """Act on one control record: a switch on `COMMAND_PARTITION` goes to the event loop, the rest is ignored."""
        try:
            record = decode_control(value)
        except ControlMessageError as exc:
            log.warning("ignored a control record: %s", exc)
            return None
        if not isinstance(record, SwitchCommand) or self._loop is None:
            return None
        if partition != COMMAND_PARTITION:
            log.warning(
                "control: ignored switch command %r on partition %s: commands are obeyed on partition %d only"
                " (`stream-app models switch` sends them there)",
                record.id,
                partition,
                COMMAND_PARTITION,
            )
            return None
        log.info("control: switch to %r (%s), command %r", record.model, record.precision or "default", record.id)
        return asyncio.run_coroutine_threadsafe(self._apply(record), self._loop)

    async def _apply(self, command: SwitchCommand) -> None:
        """Queue ``command``; whoever holds the switch lock next takes every queued command at once."""
        self._pending.append(command)
        if self._switching is None:
            self._switching = asyncio.Lock()
        async with self._switching:  # one load at a time
            if not self._pending:
                return  # taken with a newer command by the run before this one
            commands, self._pending = self._pending, []
            await self._apply_newest(commands)
            self.publish_status()

    async def _apply_newest(self, commands: list[SwitchCommand]) -> None:
        """Serve the newest of ``commands`` that loads; the status names the newest and why it failed, if it did."""
        newest = commands[-1]
        self._last_command = (newest.id, None)
        for command in reversed(commands):
            try:
                model = allowed_model(command.model, self.model_roots)
                await self.engine.switch(model, command.precision)
            except ModelNotAllowed as exc:  # checked before anything is read from disk
                log.warning("control: switch %r refused: %s", command.id, exc)
                self._note_failure(command, newest, exc)
            except Exception as exc:  # a bad model name must not take the replica down
                log.error("control: switch %r failed: %s", command.id, exc)
                self._note_failure(command, newest, exc)
            else:
                passed = [c.id for c in commands if c is not command and c is not newest]
                if command is not newest or passed:
                    log.info("control: served switch %r; superseded while a model loaded: %s", command.id, passed)
                return

    def _note_failure(self, command: SwitchCommand, newest: SwitchCommand, exc: BaseException) -> None:
        if command is newest:
            self._last_command = (newest.id, self._reason(exc))

    def _reason(self, exc: BaseException) -> str:
        """Return the error as a status record carries it: kind and message, any configured secret masked."""
        return redact_text(f"{type(exc).__name__}: {exc}", self._secrets)


# ---- the operator side ------------------------------------------------------------------------


def publish_command(kafka: KafkaSettings, command: SwitchCommand, timeout: float = 10.0) -> None:
    """Send one command and wait for the broker to acknowledge it."""
    producer = Producer(producer_config(kafka, client_id="stream-app-models"))
    failure: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            failure.append(str(err))

    producer.produce(
        kafka.control_topic, value=encode_command(command), partition=COMMAND_PARTITION, on_delivery=delivered
    )
    if producer.flush(timeout) > 0 or failure:
        raise ConnectionError(f"the control command was not delivered: {failure or 'timed out'}")


def read_statuses(
    kafka: KafkaSettings,
    *,
    timeout: float = 10.0,
    follow_until: Callable[[dict[str, ReplicaStatus]], bool] | None = None,
) -> dict[str, ReplicaStatus]:
    """Fold the control topic into the latest status per replica.

    Reads from the beginning to the end offsets it finds; with ``follow_until`` it keeps reading new
    records until that predicate holds for the statuses (or ``timeout`` passes).
    """
    topic = kafka.control_topic
    consumer = Consumer(consumer_config(kafka))
    latest: dict[str, ReplicaStatus] = {}
    deadline = time.monotonic() + timeout
    try:
        meta = consumer.list_topics(topic, timeout=min(timeout, 5.0)).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            return latest
        marks = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5.0) for p in meta.partitions}
        ends = {p: high for p, (_low, high) in marks.items()}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
        behind = {p for p, (low, high) in marks.items() if high > low}  # low == high: emptied by retention
        while time.monotonic() < deadline:
            if not behind and (follow_until is None or follow_until(latest)):
                break
            message = consumer.poll(0.2)
            if message is None or message.error():
                continue
            partition, offset = message.partition(), message.offset()
            if partition is not None and offset is not None and offset >= ends.get(partition, 0) - 1:
                behind.discard(partition)
            with contextlib.suppress(ControlMessageError):
                record = decode_control(message.value())
                if isinstance(record, ReplicaStatus):
                    latest[record.replica] = record
        return latest
    finally:
        consumer.close()


def live(statuses: Mapping[str, ReplicaStatus]) -> dict[str, ReplicaStatus]:
    """Drop replicas whose last word was that they stopped."""
    return {name: s for name, s in statuses.items() if s.state != "stopped"}
