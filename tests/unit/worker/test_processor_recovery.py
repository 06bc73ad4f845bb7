"""A step that fails on a bug of ours runs again from the stored state, after a backoff that grows."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from processor_standin import T0, Worker

from stream_app.worker import processor as processor_module


async def test_a_step_failing_every_time_is_retried_with_a_growing_backoff_not_in_a_hot_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = Worker()
    real_step = worker.processor.steps.step
    failures: list[float] = []

    async def failing(live: Any, **kwargs: Any) -> None:
        failures.append(time.monotonic())
        raise RuntimeError("a bug outside the decode (closing, storing)")

    monkeypatch.setattr(worker.processor.steps, "step", failing)
    worker.record("a", T0, seq=0, loud=True)
    await asyncio.sleep(1.0)
    # 0.1, 0.2, 0.4 s between tries: four in the first second (it ran thousands of times a second before)
    assert 2 <= len(failures) <= 6
    gaps = [b - a for a, b in itertools.pairwise(failures)]
    assert all(b > a for a, b in itertools.pairwise(gaps))
    assert worker.part.acks.in_flight == 1  # never acknowledged past
    assert worker.part.streams["a"].busy and worker.processor.busy_streams() == set()  # a hand-over need not wait

    succeeded: list[int] = []

    async def fixed(live: Any, **kwargs: Any) -> None:  # the bug fixed (a new release)
        await real_step(live, **kwargs)
        succeeded.append(1)

    monkeypatch.setattr(worker.processor.steps, "step", fixed)
    await asyncio.sleep(processor_module.RECOVERY_BACKOFF * 2 ** len(failures) + 0.2)
    worker.record("a", T0 + 0.1, seq=1, loud=True)
    await worker.tick(1.0)
    assert succeeded  # the stream goes on, and its next failure would wait 0.1 s again
    assert "a" not in worker.processor._failures
