from __future__ import annotations

import pytest

from stream_app.config import Settings
from stream_app.inference.registry import ModelKey
from stream_app.worker import control_start
from stream_app.worker.control import SwitchCommand, encode_command
from stream_app.worker.control_start import start_engine


class Engine:
    """Loads what it is asked to, except models named in ``broken``."""

    def __init__(self, broken: tuple[str, ...] = ()) -> None:
        self.broken = broken
        self.started: list[tuple[str | None, str | None]] = []

    def start(self, model: str | None, precision: str | None) -> ModelKey:
        if model in self.broken:
            raise RuntimeError(f"{model}: model.bin is damaged")
        self.started.append((model, precision))
        return ModelKey(model or "tiny.en", precision or "int8", "cpu")


def switch(model: str, at: float) -> SwitchCommand:
    return SwitchCommand(model, "int8", f"id-{model}-{at:g}", at)


def test_the_latest_switch_is_served_from_the_start() -> None:
    engine = Engine()
    key, choice = start_engine(engine.start, [switch("tiny.en", 1), switch("base", 2)], roots=())
    assert engine.started == [("base", "int8")] and key.model == "base"
    assert choice.command is not None and choice.command.id == "id-base-2"


@pytest.mark.parametrize("broken", [(), ("base",)])
def test_a_switch_the_replicas_refused_leaves_them_on_the_model_before_it(broken: tuple[str, ...]) -> None:
    engine = Engine(broken)
    switches = [switch("base", 1), switch("/not/under/the/roots", 2)]
    _, choice = start_engine(engine.start, switches if not broken else switches[:1], roots=())
    if broken:  # the only switch cannot load here: the configured model
        assert engine.started == [(None, None)] and choice.command is None and len(choice.refused) == 1
    else:
        assert engine.started == [("base", "int8")] and "ModelNotAllowed" in choice.refused[0]


def test_no_switch_means_the_configured_model() -> None:
    engine = Engine()
    _, choice = start_engine(engine.start, [], roots=())
    assert engine.started == [(None, None)] and choice.command is None


class _Message:
    def __init__(self, partition: int, offset: int, value: bytes) -> None:
        self._at, self._value = (partition, offset), value

    def error(self) -> None:
        return None

    def partition(self) -> int:
        return self._at[0]

    def offset(self) -> int:
        return self._at[1]

    def value(self) -> bytes:
        return self._value


class _Topic:
    """A control topic as a consumer sees it: per partition, (low, high) watermarks and the records left."""

    def __init__(self, records: dict[int, list[bytes]], low: dict[int, int] | None = None) -> None:
        self.records, self.low = records, low or {}

    def consumer(self, *_args: object, **_kwargs: object) -> object:
        topic = self

        class Consumer:
            def __init__(self) -> None:
                self.queue: list[_Message] = []

            def list_topics(self, name: str, timeout: float) -> object:
                meta = type("T", (), {"error": None, "partitions": {p: None for p in topic.records}})()
                return type("M", (), {"topics": {name: meta}})()

            def get_watermark_offsets(self, tp: object, timeout: float) -> tuple[int, int]:
                p = tp.partition  # type: ignore[attr-defined]
                low = topic.low.get(p, 0)
                return low, low + len(topic.records[p])

            def assign(self, tps: list[object]) -> None:
                for tp in tps:
                    p = tp.partition  # type: ignore[attr-defined]
                    low = topic.low.get(p, 0)
                    self.queue += [_Message(p, low + i, v) for i, v in enumerate(topic.records[p])]

            def poll(self, timeout: float) -> _Message | None:
                return self.queue.pop(0) if self.queue else None

            def close(self) -> None:
                pass

        return Consumer()


def _switch_record(model: str, issued_at: float) -> bytes:
    return encode_command(SwitchCommand(model, "int8", f"id-{model}", issued_at))


def test_the_history_is_the_command_partition_in_offset_order_whatever_the_clocks_say(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    """Running replicas apply commands as they arrive: a starting one must pick the same last command."""
    topic = _Topic(
        {
            0: [_switch_record("base", 100.0), _switch_record("tiny.en", 1.0)],  # the newer, from a slow clock
            1: [_switch_record("large-v3", 1e300)],  # not the command partition: no replica obeys it
        }
    )
    monkeypatch.setattr(control_start, "Consumer", topic.consumer)
    history = control_start.read_control_history(settings.kafka, timeout=5.0)
    assert [c.model for c in history.switches] == ["base", "tiny.en"]
    assert history.ends == {0: 2, 1: 1}


def test_a_control_topic_emptied_by_retention_is_read_at_once(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    topic = _Topic({0: [], 1: []}, low={0: 3, 1: 7})  # low == high: the records expired
    monkeypatch.setattr(control_start, "Consumer", topic.consumer)
    history = control_start.read_control_history(settings.kafka, timeout=2.0)
    assert history.switches == () and history.ends == {0: 3, 1: 7}
