from __future__ import annotations

import pytest

from stream_app.inference.registry import ModelKey
from stream_app.worker.control import SwitchCommand
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
