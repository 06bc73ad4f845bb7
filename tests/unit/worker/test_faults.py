from __future__ import annotations

import numpy as np
import pytest

from stream_app.inference.types import Priority, WindowJob, WindowTranscript
from stream_app.worker.faults import FaultInjector, InjectedFailure, parse_window_crashes, parse_window_failures


def test_failure_plans_read_stream_ids_with_colons() -> None:
    assert parse_window_failures(" mic-7:2:2, site:a:b:0:1 ,") == {("mic-7", 2): 2, ("site:a:b", 0): 1}
    assert parse_window_failures("") == {}


def test_crash_plans_read_stream_window_pairs() -> None:
    assert parse_window_crashes("poison:1,site:x:3") == {("poison", 1), ("site:x", 3)}


@pytest.mark.parametrize("spec", ["mic:2", "mic:x:1", ":2:1", "mic:-1:1", "mic:2:0", "mic:2:1.5"])
def test_a_malformed_failure_plan_is_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_window_failures(spec)


@pytest.mark.parametrize("spec", ["mic", "mic:", ":1", "mic:-2", "mic:one"])
def test_a_malformed_crash_plan_is_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_window_crashes(spec)


async def test_the_injector_fails_a_final_window_its_planned_times_and_leaves_previews_alone() -> None:
    async def transcribe(job: WindowJob) -> WindowTranscript:
        return WindowTranscript((), f"{job.stream_id}/{job.window_index}", 0.0, 0.0, 1.0, "fake", "int8")

    injector = FaultInjector(transcribe, {("mic", 1): 2})
    final = WindowJob("mic", 1, 0.0, np.zeros(160, dtype=np.float32), Priority.FINAL)
    preview = WindowJob("mic", 1, 0.0, np.zeros(160, dtype=np.float32), Priority.INTERIM)
    assert (await injector(preview)).text == "mic/1"
    for _ in range(2):
        with pytest.raises(InjectedFailure):
            await injector(final)
    assert (await injector(final)).text == "mic/1"
