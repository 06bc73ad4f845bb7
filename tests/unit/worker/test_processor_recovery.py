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


async def test_a_resumed_session_whose_first_step_fails_goes_on_from_the_end_not_from_seq_0(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing of the new session is stored yet: the recovery starts it as the resume did, or its audio is "lost"."""
    from stream_app.wire.segment_codec import decode_segment

    worker = Worker()
    t = T0
    for seq in range(50):
        worker.record("a", t, seq, loud=20 <= seq < 30, end=seq == 49)
        t += 0.1
        await worker.tick(0.1)
    await worker.tick(1.0)
    assert worker.ended("a")
    real_step = worker.processor.steps.step
    failed: list[int] = []

    async def fails_once(live: Any, **kwargs: Any) -> None:
        if not failed:
            failed.append(1)
            raise RuntimeError("a bug outside the decode")
        await real_step(live, **kwargs)

    monkeypatch.setattr(worker.processor.steps, "step", fails_once)
    for seq in range(50, 80):
        worker.record("a", t, seq, loud=55 <= seq < 66, end=seq == 79)
        t += 0.1
        await worker.tick(0.1)
    await asyncio.sleep(processor_module.RECOVERY_BACKOFF * 4)
    for _ in range(3):
        await worker.tick(1.0)
    assert failed and worker.ended("a")
    segments = [decode_segment(r.value) for r in worker.outputs.output_topic.sent]
    gaps = [(s.session, g.reason, g.start, g.end) for s in segments for g in s.gaps]
    assert not [g for g in gaps if g[1] == "lost_chunks"], gaps
    assert sum(1 for s in segments if s.end_of_stream) == 2  # each session ended
