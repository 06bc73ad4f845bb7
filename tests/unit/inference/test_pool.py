from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from stream_app.config.settings import ParallelSettings, build_section
from stream_app.inference.pool import (
    InferenceFailed,
    InferencePool,
    InferenceTimeout,
    PoolClosed,
    PoolSaturated,
    PreviewExpired,
)
from stream_app.inference.pool_metrics import PoolMetrics
from stream_app.inference.types import Priority, WindowJob, WindowTranscript

WAIT = 5.0  # generous bound on every blocking wait, so a broken pool fails the test instead of hanging


def parallel(**overrides: Any) -> ParallelSettings:
    raw = {
        "max_workers": 1,
        "task_queue_size": 100,
        "max_batch": 4,
        "max_wait": "20ms",
        "task_timeout": "10s",
    }
    raw.update(overrides)
    return build_section("parallel", raw)  # type: ignore[no-any-return]


def job(stream: str, index: int = 0, priority: Priority = Priority.FINAL) -> WindowJob:
    return WindowJob(stream, index, float(index), np.zeros(1600, dtype=np.float32), priority)


class FakeModel:
    """Answers '<stream>/<index>'; raises on stream 'poison'; blocks on stream 'hold' until released."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, int]]] = []
        self.release = threading.Event()
        self.holding = threading.Event()
        self.lock = threading.Lock()

    def transcribe_windows(self, jobs: Sequence[WindowJob]) -> list[WindowTranscript]:
        with self.lock:
            self.batches.append([(j.stream_id, j.window_index) for j in jobs])
        if any(j.stream_id == "hold" for j in jobs):
            self.holding.set()
            assert self.release.wait(WAIT)
        if any(j.stream_id == "poison" for j in jobs):
            raise ValueError("cannot decode this window")
        return [WindowTranscript((), f"{j.stream_id}/{j.window_index}", 0.0, 0.0, 1.0, "fake", "int8") for j in jobs]

    def seen(self) -> list[tuple[str, int]]:
        return [item for batch in self.batches for item in batch]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def make_pool(model: Any, registry: CollectorRegistry, **overrides: Any) -> InferencePool:
    block = overrides.pop("block_when_full", True)
    return InferencePool(model, parallel(**overrides), metrics=PoolMetrics(registry), block_when_full=block)


def hold_worker(pool: InferencePool, model: FakeModel) -> Future[WindowTranscript]:
    """Occupy the (single) worker with a job that runs until ``model.release`` is set."""
    held = pool.submit(job("hold"))
    assert model.holding.wait(WAIT)
    return held


def test_results_per_stream_come_back_in_submission_order(registry: CollectorRegistry) -> None:
    model = FakeModel()
    with make_pool(model, registry, max_workers=3) as pool:
        futures: dict[str, list[Future[WindowTranscript]]] = {s: [] for s in ("a", "b", "c")}
        for index in range(20):
            for stream in futures:
                futures[stream].append(pool.submit(job(stream, index)))
        for stream, fs in futures.items():
            assert [f.result(WAIT).text for f in fs] == [f"{stream}/{i}" for i in range(20)]


def test_one_worker_runs_each_stream_in_submission_order(registry: CollectorRegistry) -> None:
    model = FakeModel()
    with make_pool(model, registry) as pool:
        fs = [pool.submit(job(s, i)) for i in range(15) for s in ("a", "b")]
        for f in fs:
            f.result(WAIT)
    for stream in ("a", "b"):
        assert [i for s, i in model.seen() if s == stream] == list(range(15))


def run_order(registry: CollectorRegistry, jobs: Sequence[WindowJob]) -> list[tuple[str, int]]:
    """Queue ``jobs`` behind a held worker of a one-window-per-call pool; return the order they ran in."""
    model = FakeModel()
    with make_pool(model, registry, max_batch=1) as pool:
        held = hold_worker(pool, model)
        fs = [pool.submit(j) for j in jobs]
        model.release.set()
        for f in [held, *fs]:
            f.result(WAIT)
    return model.seen()[1:]


def test_final_windows_run_before_interim_before_batch(registry: CollectorRegistry) -> None:
    order = [
        ("b", 0, Priority.BATCH),
        ("i", 0, Priority.INTERIM),
        ("f", 0, Priority.FINAL),
        ("b", 1, Priority.BATCH),
        ("f", 1, Priority.FINAL),
        ("i", 1, Priority.INTERIM),
    ]
    ran = run_order(registry, [job(s, i, p) for s, i, p in order])
    assert ran == [("f", 0), ("f", 1), ("i", 0), ("i", 1), ("b", 0), ("b", 1)]


def test_within_a_priority_the_stream_served_longest_ago_goes_first(registry: CollectorRegistry) -> None:
    order = [  # (stream, when its previous commit decode returned; 0: never here, as after a takeover)
        ("live-a", 100.0, Priority.FINAL),
        ("live-b", 99.0, Priority.FINAL),
        ("moved", 0.0, Priority.FINAL),
        ("preview", 0.0, Priority.INTERIM),
        ("live-c", 100.0, Priority.FINAL),
        ("taken-over", 0.0, Priority.FINAL),
    ]
    ran = run_order(registry, [dataclasses.replace(job(s, 0, p), served_at=at) for s, at, p in order])
    # priority first; then the stream waiting since longest; then submission (live-a before live-c)
    assert [s for s, _ in ran] == ["moved", "taken-over", "live-b", "live-a", "live-c", "preview"]


def test_ready_jobs_of_many_streams_share_one_call(registry: CollectorRegistry) -> None:
    model = FakeModel()
    with make_pool(model, registry, max_batch=4) as pool:
        held = hold_worker(pool, model)
        fs = [pool.submit(job(f"s{i}")) for i in range(6)]
        model.release.set()
        for f in [held, *fs]:
            f.result(WAIT)
    assert [len(b) for b in model.batches] == [1, 4, 2]
    assert registry.get_sample_value("stream_app_pool_batch_size_count", {"pool": "default", "worker": "0"}) == 3


def test_full_queue_reports_saturation_and_refuses_or_blocks(registry: CollectorRegistry) -> None:
    model = FakeModel()
    with make_pool(model, registry, task_queue_size=3, block_when_full=False) as pool:
        held = hold_worker(pool, model)
        queued = [pool.submit(job("q", i)) for i in range(3)]
        assert pool.is_saturated()
        assert pool.queued == 3
        with pytest.raises(PoolSaturated):
            pool.submit(job("q", 3))
        with pytest.raises(PoolSaturated):
            pool.submit(job("q", 3), block=True, timeout=0.05)
        assert not pool.wait_for_capacity(timeout=0.05)
        assert registry.get_sample_value("stream_app_pool_rejected_total", {"pool": "default"}) == 2

        model.release.set()
        assert pool.wait_for_capacity(timeout=WAIT)
        late = pool.submit(job("q", 3), block=True, timeout=WAIT)
        assert [f.result(WAIT).text for f in [held, *queued, late]] == ["hold/0", "q/0", "q/1", "q/2", "q/3"]
        assert not pool.is_saturated()


def test_blocking_submit_waits_for_room(registry: CollectorRegistry) -> None:
    model = FakeModel()
    with make_pool(model, registry, task_queue_size=1) as pool:
        held = hold_worker(pool, model)
        pool.submit(job("q", 0))
        threading.Timer(0.1, model.release.set).start()
        late = pool.submit(job("q", 1))  # blocks until the worker frees a slot
        assert late.result(WAIT).text == "q/1"
        assert held.done()


async def test_async_submit_waits_without_blocking_the_event_loop(registry: CollectorRegistry) -> None:
    model = FakeModel()
    pool = make_pool(model, registry, task_queue_size=1)
    try:
        held = await asyncio.to_thread(hold_worker, pool, model)
        first = await pool.submit_async(job("q", 0))
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while not model.release.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        ticking = asyncio.create_task(ticker())
        asyncio.get_running_loop().call_later(0.2, model.release.set)
        result = await asyncio.wait_for(pool.transcribe_async(job("q", 1)), WAIT)
        await ticking
        assert result.text == "q/1"
        assert (await first).text == "q/0"
        assert ticks >= 5  # the loop kept running while the pool was full
        assert held.result(WAIT).text == "hold/0"
    finally:
        pool.close()


def test_a_job_past_its_timeout_fails_and_the_pool_goes_on(registry: CollectorRegistry) -> None:
    model = FakeModel()
    with make_pool(model, registry, task_timeout="200ms") as pool:
        stuck = pool.submit(job("hold"))
        with pytest.raises(InferenceTimeout, match=r"ran past 0\.2 s"):
            stuck.result(WAIT)
        assert registry.get_sample_value("stream_app_pool_timeouts_total", {"pool": "default"}) == 1
        model.release.set()
        assert pool.submit(job("after")).result(WAIT).text == "after/0"
        assert isinstance(stuck.exception(), InferenceTimeout)  # the late result was dropped


def test_a_job_abandoned_past_its_timeout_announces_nothing_when_its_call_returns(registry: CollectorRegistry) -> None:
    # its owner has moved on (a retry, a give-up): a late "finished" would take back a later step's count
    model = FakeModel()
    finished: list[str] = []
    with make_pool(model, registry, task_timeout="200ms") as pool:
        stuck = pool.submit(dataclasses.replace(job("hold"), on_finish=lambda: finished.append("hold")))
        with pytest.raises(InferenceTimeout):
            stuck.result(WAIT)
        model.release.set()
        after = dataclasses.replace(job("after"), on_finish=lambda: finished.append("after"))
        assert pool.submit(after).result(WAIT).text == "after/0"  # the stuck call has returned before it
    assert finished == ["after"]


def test_a_poisoned_job_fails_alone_and_the_pool_keeps_serving(registry: CollectorRegistry) -> None:
    model = FakeModel()
    with make_pool(model, registry, max_batch=8) as pool:
        held = hold_worker(pool, model)
        fs = [pool.submit(job(s, i)) for i, s in enumerate(["a", "b", "poison", "c", "d"])]
        model.release.set()
        held.result(WAIT)
        with pytest.raises(InferenceFailed) as failed:
            fs[2].result(WAIT)
        assert failed.value.stream_id == "poison"
        assert failed.value.reason == "ValueError: cannot decode this window"
        assert [fs[i].result(WAIT).text for i in (0, 1, 3, 4)] == ["a/0", "b/1", "c/3", "d/4"]
        assert pool.submit(job("e")).result(WAIT).text == "e/0"
    assert registry.get_sample_value("stream_app_pool_errors_total", {"pool": "default", "worker": "0"}) == 1
    assert model.batches[1] == [
        ("a", 0),
        ("b", 1),
        ("poison", 2),
        ("c", 3),
        ("d", 4),
    ]  # one batched call first


def test_close_finishes_queued_jobs_then_refuses_more(registry: CollectorRegistry) -> None:
    model = FakeModel()
    pool = make_pool(model, registry)
    fs = [pool.submit(job("a", i)) for i in range(5)]
    pool.close(wait=True)
    assert [f.result(0).text for f in fs] == [f"a/{i}" for i in range(5)]
    with pytest.raises(PoolClosed):
        pool.submit(job("a", 5))


def test_close_can_cancel_what_is_still_queued(registry: CollectorRegistry) -> None:
    model = FakeModel()
    pool = make_pool(model, registry)
    held = hold_worker(pool, model)
    queued = pool.submit(job("a"))
    pool.close(wait=False, cancel_pending=True)
    model.release.set()
    pool.close(wait=True)
    assert held.result(WAIT).text == "hold/0"
    with pytest.raises(CancelledError):
        queued.result(0)


def test_a_call_stuck_past_the_timeout_shows_as_stalled_until_it_returns(registry: CollectorRegistry) -> None:
    model = FakeModel()
    with make_pool(model, registry, task_timeout="200ms") as pool:
        assert not pool.stalled() and pool.oldest_call_seconds() == 0.0
        stuck = pool.submit(job("hold"))
        assert model.holding.wait(WAIT)
        assert not pool.stalled()  # running, but not yet past its timeout
        with pytest.raises(InferenceTimeout):
            stuck.result(WAIT)
        deadline = time.monotonic() + WAIT
        while not pool.stalled() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool.stalled() and pool.oldest_call_seconds() > 0.2  # the job failed; the call still hangs
        model.release.set()
        assert pool.submit(job("after")).result(WAIT).text == "after/0"
        assert not pool.stalled() and pool.oldest_call_seconds() < 0.2


def test_replicas_share_the_work_and_export_their_stats(registry: CollectorRegistry) -> None:
    models = [FakeModel(), FakeModel()]
    pool = InferencePool(models, parallel(max_workers=2, load_balancing="round_robin"), metrics=PoolMetrics(registry))
    with pool:
        fs = [pool.submit(job("s", i)) for i in range(10)]
        assert [f.result(WAIT).text for f in fs] == [f"s/{i}" for i in range(10)]
        stats = pool.stats()
    assert len(models[0].seen()) == 5 and len(models[1].seen()) == 5
    assert [s.index for s in stats] == [0, 1]
    assert all(s.ewma_seconds > 0 for s in stats)
    for worker in ("0", "1"):
        assert registry.get_sample_value("stream_app_pool_queue_length", {"pool": "default", "worker": worker}) == 0
        assert registry.get_sample_value("stream_app_worker_load", {"pool": "default", "worker": worker}) > 0


def test_the_start_hook_runs_when_the_model_takes_the_window_not_while_it_waits(registry: CollectorRegistry) -> None:
    model = FakeModel()
    started: list[tuple[str, int]] = []

    def hook(name: str) -> Any:
        def on_start() -> None:
            started.append((name, len(model.batches)))  # how many model calls had begun before it

        return on_start

    with make_pool(model, registry, max_batch=1) as pool:
        held = hold_worker(pool, model)
        queued = pool.submit(dataclasses.replace(job("waiting"), on_start=hook("waiting")))
        time.sleep(0.1)
        assert started == []  # queued behind the held window: the model has not started it
        model.release.set()
        assert queued.result(WAIT).text == "waiting/0"
        held.result(WAIT)
    assert started == [("waiting", 1)]  # called once, after the held call began and before its own


def test_a_failing_start_hook_does_not_stop_the_window(registry: CollectorRegistry) -> None:
    def broken() -> None:
        raise RuntimeError("the changelog is gone")

    with make_pool(FakeModel(), registry) as pool:
        assert pool.submit(dataclasses.replace(job("a"), on_start=broken)).result(WAIT).text == "a/0"


def test_the_finish_hook_runs_after_the_model_returns_and_before_the_next_isolated_call(
    registry: CollectorRegistry,
) -> None:
    model = FakeModel()
    events: list[str] = []

    def hook(what: str) -> Any:
        def record() -> None:
            time.sleep(0.05)  # a durable write: the next isolated call must wait for it
            events.append(f"{what} after {len(model.batches)} calls")

        return record

    with make_pool(model, registry, max_workers=2) as pool:
        futures = [
            pool.submit(
                dataclasses.replace(
                    job(name), isolated=True, on_start=hook(f"{name} start"), on_finish=hook(f"{name} end")
                )
            )
            for name in ("a", "poison")
        ]
        assert futures[0].result(WAIT).text == "a/0"
        with pytest.raises(InferenceFailed):
            futures[1].result(WAIT)  # a window the model failed on is finished too
    assert events == [
        "a start after 0 calls",
        "a end after 1 calls",
        "poison start after 1 calls",
        "poison end after 2 calls",
    ]


def test_an_isolated_window_runs_in_a_model_call_of_its_own(registry: CollectorRegistry) -> None:
    model = FakeModel()
    with make_pool(model, registry, max_batch=8) as pool:
        held = hold_worker(pool, model)
        futures = [pool.submit(job("a")), pool.submit(dataclasses.replace(job("suspect"), isolated=True))]
        futures += [pool.submit(job("b")), pool.submit(job("c"))]
        model.release.set()
        for future in futures:
            future.result(WAIT)
        held.result(WAIT)
    assert model.batches[1:] == [[("a", 0)], [("suspect", 0)], [("b", 0), ("c", 0)]]


def test_a_round_is_each_workers_batch_times_the_workers_and_shrinks_to_one_window_over_budget(
    registry: CollectorRegistry,
) -> None:
    model = FakeModel()
    with make_pool(model, registry, max_workers=2, max_batch=4) as pool:
        assert pool.round_size() == 8
    tight = InferencePool(
        model, parallel(max_workers=2, max_batch=4), metrics=PoolMetrics(CollectorRegistry()), memory_budget=1
    )
    with tight:
        assert tight.round_size() == 2  # the process is over its budget: one window a worker


def test_a_preview_that_waited_behind_commit_decodes_too_long_is_dropped_unrun(registry: CollectorRegistry) -> None:
    model = FakeModel()
    with make_pool(model, registry, max_batch=1, preview_max_wait="50ms") as pool:
        held = hold_worker(pool, model)
        stale = pool.submit(job("i", 0, Priority.INTERIM))
        time.sleep(0.1)
        fresh_final = pool.submit(job("f", 0, Priority.FINAL))
        batch = pool.submit(job("b", 0, Priority.BATCH))
        model.release.set()
        held.result(WAIT)
        with pytest.raises(PreviewExpired, match="waited"):
            stale.result(WAIT)
        fresh_final.result(WAIT)
        batch.result(WAIT)  # batch jobs are not previews: they wait as long as it takes
        assert pool.queued == 0
    assert ("i", 0) not in model.seen()


def test_without_a_preview_wait_limit_previews_wait_as_long_as_it_takes(registry: CollectorRegistry) -> None:
    model = FakeModel()
    with make_pool(model, registry, max_batch=1, preview_max_wait="0s") as pool:
        held = hold_worker(pool, model)
        preview = pool.submit(job("i", 0, Priority.INTERIM))
        time.sleep(0.1)
        model.release.set()
        held.result(WAIT)
        preview.result(WAIT)
    assert ("i", 0) in model.seen()
