from __future__ import annotations

import threading
from pathlib import Path

import pytest

from stream_app.inference.models import resolve_model
from stream_app.inference.registry import ModelKey, ModelRegistry, estimate_model_bytes

MB = 1024 * 1024


class Loaded:
    """A loaded thing with a known size; the registry is generic over what it caches."""

    def __init__(self, key: ModelKey) -> None:
        self.key = key
        self.closed = False


class Recorder:
    def __init__(self, sizes: dict[str, int]) -> None:
        self.sizes = sizes
        self.loads: list[ModelKey] = []
        self.closed: list[ModelKey] = []
        self.lock = threading.Lock()

    def load(self, key: ModelKey) -> Loaded:
        with self.lock:
            self.loads.append(key)
        return Loaded(key)

    def estimate(self, key: ModelKey) -> int:
        return self.sizes[key.model]

    def close(self, value: Loaded) -> None:
        value.closed = True
        self.closed.append(value.key)


def _registry(budget_mb: int, sizes_mb: dict[str, int]) -> tuple[ModelRegistry[Loaded], Recorder]:
    rec = Recorder({k: v * MB for k, v in sizes_mb.items()})
    return ModelRegistry(budget_mb * MB, rec.load, rec.estimate, close=rec.close), rec


A, B, C = ModelKey("a", "int8"), ModelKey("b", "int8"), ModelKey("c", "int8")


def test_a_loaded_model_is_reused() -> None:
    reg, rec = _registry(100, {"a": 40})
    assert reg.load(A) is reg.load(A)
    assert rec.loads == [A]


def test_precision_and_device_are_part_of_the_key() -> None:
    reg, rec = _registry(1000, {"a": 40})
    reg.load(A)
    reg.load(ModelKey("a", "float32"))
    reg.load(ModelKey("a", "int8", "cuda"))
    assert len(rec.loads) == 3


def test_least_recently_used_idle_model_is_evicted_over_budget() -> None:
    reg, rec = _registry(100, {"a": 40, "b": 40, "c": 40})
    reg.load(A)
    reg.load(B)
    reg.load(A)  # A is now the most recently used
    reg.load(C)
    assert [r.key for r in reg.snapshot()] == [A, C]
    assert rec.closed == [B]
    assert reg.estimated_bytes() <= 100 * MB


def test_a_model_with_work_in_flight_is_never_evicted() -> None:
    reg, rec = _registry(100, {"a": 40, "b": 40, "c": 40})
    with reg.acquire(A) as a:
        reg.load(B)
        reg.load(C)  # over budget: B is idle and goes, A is busy and stays
        assert not a.closed
        assert {r.key for r in reg.snapshot()} == {A, C}
        assert [r.in_flight for r in reg.snapshot() if r.key == A] == [1]
    assert rec.closed == [B]


def test_over_budget_with_everything_busy_keeps_all_loaded() -> None:
    reg, rec = _registry(50, {"a": 40, "b": 40})
    with reg.acquire(A), reg.acquire(B):
        assert len(reg.snapshot()) == 2
    assert rec.closed == []


def test_retire_waits_for_in_flight_work() -> None:
    reg, rec = _registry(100, {"a": 40})
    with reg.acquire(A):
        assert reg.retire(A)
        assert rec.closed == []
        assert reg.snapshot()[0].retiring
    assert rec.closed == [A]
    assert reg.snapshot() == []
    assert not reg.retire(A)


def test_retire_of_an_idle_model_unloads_now() -> None:
    reg, rec = _registry(100, {"a": 40})
    reg.load(A)
    reg.retire(A)
    assert rec.closed == [A]


def test_concurrent_loads_of_one_key_load_once() -> None:
    gate = threading.Event()
    rec = Recorder({"a": 10 * MB})

    def slow_load(key: ModelKey) -> Loaded:
        gate.wait(5)
        return rec.load(key)

    reg: ModelRegistry[Loaded] = ModelRegistry(100 * MB, slow_load, rec.estimate)
    got: list[Loaded] = []
    threads = [threading.Thread(target=lambda: got.append(reg.load(A))) for _ in range(4)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(10)
    assert len(got) == 4 and len({id(g) for g in got}) == 1
    assert rec.loads == [A]


def test_a_failed_load_can_be_retried() -> None:
    calls = []

    def flaky(key: ModelKey) -> Loaded:
        calls.append(key)
        if len(calls) == 1:
            raise OSError("disk hiccup")
        return Loaded(key)

    reg: ModelRegistry[Loaded] = ModelRegistry(100 * MB, flaky, lambda k: MB)
    with pytest.raises(OSError):
        reg.load(A)
    assert reg.load(A).key == A


async def test_aload_runs_in_a_thread() -> None:
    seen: list[str] = []

    def load(key: ModelKey) -> Loaded:
        seen.append(threading.current_thread().name)
        return Loaded(key)

    reg: ModelRegistry[Loaded] = ModelRegistry(100 * MB, load, lambda k: MB)
    assert (await reg.aload(A)).key == A
    assert seen and seen[0] != threading.main_thread().name


def test_estimate_scales_with_precision(tmp_path: Path) -> None:
    tiny = resolve_model("tiny.en", tmp_path)
    int8 = estimate_model_bytes(tiny, "int8")
    fp32 = estimate_model_bytes(tiny, "fp32")
    size = (tiny / "model.bin").stat().st_size
    assert int8 < size < fp32
    assert fp32 - int8 == int(size * 2.0) - int(size * 0.5)


def test_a_retired_model_s_memory_is_given_back_and_the_unloading_logged(caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder({"a": 40 * MB, "b": 40 * MB})
    order: list[str] = []
    reg: ModelRegistry[Loaded] = ModelRegistry(
        100 * MB,
        rec.load,
        rec.estimate,
        close=lambda v: order.append(f"close {v.key}"),
        give_back=lambda: order.append("give back"),
    )
    reg.load(A)
    reg.load(B)
    with caplog.at_level("INFO", logger="stream_app.inference.registry"):
        reg.retire(A)
    assert order == ["close a@int8/cpu", "give back"]  # after the close, so the freed pages are there to give
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("unloaded")]
    assert line.startswith("unloaded a@int8/cpu (estimated 40 MB): RSS ")


def test_glibc_gives_freed_memory_back_here() -> None:
    from stream_app.inference.native_memory import release_free_memory

    assert release_free_memory()  # malloc_trim found: the default give_back of every registry works on Debian
