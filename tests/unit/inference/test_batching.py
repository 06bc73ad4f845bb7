from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from stream_app.inference.batching import BatchPolicy, JobFailure, gather_batch, run_isolated
from stream_app.inference.types import WindowJob, WindowTranscript


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def scripted_poll(clock: FakeClock, arrivals: list[tuple[float, str]]):
    """A poll that returns items arriving at given clock times, advancing the clock as a wait would."""
    calls: list[float] = []

    def poll(timeout: float) -> str | None:
        calls.append(timeout)
        if arrivals and arrivals[0][0] <= clock.now + timeout:
            at, item = arrivals.pop(0)
            clock.now = max(clock.now, at)
            return item
        clock.now += timeout
        return None

    return poll, calls


def test_batch_stops_at_max_batch_even_when_more_are_ready() -> None:
    clock = FakeClock()
    poll, _ = scripted_poll(clock, [(100.0, f"j{i}") for i in range(10)])
    batch = gather_batch("first", poll, BatchPolicy(max_batch=4, max_wait=0.01), clock)
    assert batch == ["first", "j0", "j1", "j2"]


def test_batch_waits_at_most_max_wait_for_company() -> None:
    clock = FakeClock()
    poll, calls = scripted_poll(clock, [(100.003, "a"), (100.004, "b"), (100.050, "late")])
    batch = gather_batch("first", poll, BatchPolicy(max_batch=8, max_wait=0.005), clock)
    assert batch == ["first", "a", "b"]
    assert calls[0] == pytest.approx(0.005)
    assert calls[-1] == pytest.approx(0.001)  # only what is left of the wait


def test_zero_wait_takes_only_jobs_already_queued() -> None:
    clock = FakeClock()
    poll, calls = scripted_poll(clock, [(100.0, "ready"), (100.001, "later")])
    batch = gather_batch("first", poll, BatchPolicy(max_batch=8, max_wait=0.0), clock)
    assert batch == ["first", "ready"]
    assert all(t == 0.0 for t in calls)


def test_batch_of_one_never_polls() -> None:
    def poll(timeout: float) -> str | None:
        raise AssertionError("must not poll")

    assert gather_batch("only", poll, BatchPolicy(max_batch=1, max_wait=1.0)) == ["only"]


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        BatchPolicy(max_batch=0)
    with pytest.raises(ValueError):
        BatchPolicy(max_wait=-1)


def job(name: str) -> WindowJob:
    return WindowJob(stream_id=name, window_index=0, start=0.0, samples=np.zeros(160, dtype=np.float32))


def transcript(text: str) -> WindowTranscript:
    return WindowTranscript(
        words=(),
        text=text,
        avg_logprob=0.0,
        no_speech_prob=0.0,
        compression_ratio=1.0,
        model="fake",
        precision="x",
    )


class PoisonAware:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def transcribe_windows(self, jobs: Sequence[WindowJob]) -> list[WindowTranscript]:
        self.calls.append([j.stream_id for j in jobs])
        if any(j.stream_id == "poison" for j in jobs):
            raise RuntimeError("bad audio")
        return [transcript(j.stream_id) for j in jobs]


def test_good_batch_is_one_call() -> None:
    model = PoisonAware()
    outcomes = run_isolated(model, [job("a"), job("b")])
    assert [o.text for o in outcomes if isinstance(o, WindowTranscript)] == ["a", "b"]
    assert model.calls == [["a", "b"]]


def test_poisoned_batch_is_retried_job_by_job() -> None:
    model = PoisonAware()
    outcomes = run_isolated(model, [job("a"), job("poison"), job("c")])
    assert isinstance(outcomes[0], WindowTranscript) and outcomes[0].text == "a"
    assert isinstance(outcomes[1], JobFailure) and outcomes[1].reason == "RuntimeError: bad audio"
    assert isinstance(outcomes[2], WindowTranscript) and outcomes[2].text == "c"
    assert model.calls == [["a", "poison", "c"], ["a"], ["poison"], ["c"]]


def test_single_failing_job_is_not_retried() -> None:
    model = PoisonAware()
    outcomes = run_isolated(model, [job("poison")])
    assert isinstance(outcomes[0], JobFailure)
    assert model.calls == [["poison"]]


def test_wrong_result_count_counts_as_failure() -> None:
    class Short:
        def transcribe_windows(self, jobs: Sequence[WindowJob]) -> list[WindowTranscript]:
            return [transcript("x")] if len(jobs) > 1 else []

    outcomes = run_isolated(Short(), [job("a"), job("b")])
    assert all(isinstance(o, JobFailure) for o in outcomes)
    assert "returned 0 results for 1 job" in outcomes[0].reason  # type: ignore[union-attr]


def test_memory_budget_limits_the_batch() -> None:
    from stream_app.inference.batching import batch_limit_for_memory

    mb = 1024 * 1024
    assert batch_limit_for_memory(8, rss=100 * mb, budget=0) == 8  # no budget
    assert batch_limit_for_memory(8, rss=100 * mb, budget=512 * mb, per_job=32 * mb) == 8
    assert batch_limit_for_memory(8, rss=450 * mb, budget=512 * mb, per_job=32 * mb) == 1
    assert batch_limit_for_memory(8, rss=400 * mb, budget=512 * mb, per_job=32 * mb) == 3
    assert batch_limit_for_memory(8, rss=900 * mb, budget=512 * mb, per_job=32 * mb) == 1  # never zero
    # before the first call its one-off working memory is reserved
    assert batch_limit_for_memory(8, rss=250 * mb, budget=512 * mb, per_job=40 * mb, reserve=160 * mb) == 2
    assert batch_limit_for_memory(8, rss=250 * mb, budget=512 * mb, per_job=40 * mb) == 6
    assert batch_limit_for_memory(8, rss=150 * mb, budget=512 * mb) == 3  # the defaults: 100 MB a window
