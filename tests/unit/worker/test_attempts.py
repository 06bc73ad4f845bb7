from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time

import pytest

from stream_app.worker.attempts import AttemptGate


async def _call_from_thread(gate: AttemptGate) -> float:
    """Call the gate as a pool thread does; return how long the call blocked."""

    def call() -> float:
        began = time.monotonic()
        gate()
        return time.monotonic() - began

    return await asyncio.to_thread(call)


async def test_the_count_is_taken_once_per_step_and_the_model_waits_until_it_is_durable() -> None:
    marks: list[float] = []

    async def mark() -> None:
        await asyncio.sleep(0.2)  # the changelog acknowledging the count
        marks.append(time.monotonic())

    gate = AttemptGate(asyncio.get_running_loop(), mark)
    first, second = await asyncio.gather(_call_from_thread(gate), _call_from_thread(gate))
    assert len(marks) == 1  # two windows of one step: one attempt
    assert min(first, second) >= 0.15  # neither window ran before the count was durable


async def test_a_count_that_cannot_be_stored_lets_the_window_run() -> None:
    async def refused() -> None:
        raise RuntimeError("partition revoked")

    async def stuck() -> None:
        await asyncio.sleep(30)

    loop = asyncio.get_running_loop()
    await _call_from_thread(AttemptGate(loop, refused))  # logged, not raised
    blocked = await _call_from_thread(AttemptGate(loop, stuck, timeout=0.2))
    assert blocked < 5


async def test_called_on_the_loop_itself_it_schedules_the_count_without_blocking() -> None:
    done = threading.Event()

    async def mark() -> None:
        done.set()

    AttemptGate(asyncio.get_running_loop(), mark)()
    await asyncio.sleep(0.05)
    assert done.is_set()


def test_the_timeout_must_not_be_needed_when_the_loop_answers() -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        calls: list[int] = []

        async def mark() -> None:
            calls.append(1)

        began = time.monotonic()
        AttemptGate(loop, mark, timeout=30)()
        assert calls == [1] and time.monotonic() - began < 5
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


async def test_a_finished_window_takes_its_count_back_durably_and_a_later_start_counts_again() -> None:
    events: list[str] = []

    async def mark() -> None:
        await asyncio.sleep(0.05)
        events.append("mark")

    async def release() -> None:
        await asyncio.sleep(0.2)  # the changelog acknowledging the take-back
        events.append("release")

    gate = AttemptGate(asyncio.get_running_loop(), mark, release)
    await _call_from_thread(gate)

    def finish() -> float:
        began = time.monotonic()
        gate.finished()
        return time.monotonic() - began

    assert await asyncio.to_thread(finish) >= 0.15  # the next isolated window waits until it is durable
    assert events == ["mark", "release"]
    await asyncio.to_thread(gate.finished)  # nothing counted since: nothing to take back
    await _call_from_thread(gate)  # a retry of the window is a new attempt
    assert events == ["mark", "release", "mark"]


def _slow_gate(events: list[str], slow: asyncio.Event) -> AttemptGate:
    """A gate whose count waits for ``slow`` (and times out first); take-backs and forgetting go to ``events``."""

    async def mark() -> None:
        await slow.wait()
        events.append("mark")

    async def release() -> None:
        events.append("release")

    return AttemptGate(asyncio.get_running_loop(), mark, release, timeout=0.1, forget=lambda: events.append("forget"))


async def test_a_take_back_never_overtakes_a_count_still_on_its_way() -> None:
    events: list[str] = []
    slow = asyncio.Event()
    gate = _slow_gate(events, slow)
    await _call_from_thread(gate)  # the count timed out: the window ran uncounted so far
    finishing = asyncio.create_task(asyncio.to_thread(gate.finished))
    await asyncio.sleep(0.3)
    assert events == []
    slow.set()
    await finishing
    await asyncio.sleep(0.05)
    assert events == ["mark", "release"]


async def test_without_a_take_back_finishing_changes_nothing() -> None:
    marks: list[int] = []

    async def mark() -> None:
        marks.append(1)

    gate = AttemptGate(asyncio.get_running_loop(), mark)
    await _call_from_thread(gate)
    await asyncio.to_thread(gate.finished)
    assert marks == [1]


async def test_an_ordinary_window_s_return_forgets_its_count_in_memory_after_the_count_never_before() -> None:
    events: list[str] = []
    slow = asyncio.Event()
    gate = _slow_gate(events, slow)
    await _call_from_thread(gate)  # the count timed out: still on its way
    gate.returned()
    await asyncio.sleep(0.2)
    assert events == []  # forgetting first would leave the late count standing
    slow.set()
    await asyncio.sleep(0.05)
    assert events == ["mark", "forget"]  # in memory only: no take-back is written
    gate.returned()  # nothing counted since: nothing to forget
    await _call_from_thread(gate)  # the next step's start counts afresh
    await asyncio.sleep(0.05)
    assert events == ["mark", "forget", "mark"]


def test_a_count_that_lands_after_the_worker_stopped_forgets_nothing_and_raises_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Seen at a SIGTERM stop: the count's future completed once the loop had closed ("Event loop is closed")."""
    loop = asyncio.new_event_loop()
    forgotten: list[int] = []

    async def mark() -> None:
        pass

    gate = AttemptGate(loop, mark, forget=lambda: forgotten.append(1))
    count: concurrent.futures.Future[None] = concurrent.futures.Future()
    gate._future = count  # a count on its way, as `start` leaves it
    gate.returned()
    loop.close()
    with caplog.at_level(logging.ERROR):
        count.set_result(None)
    assert forgotten == [] and not [r for r in caplog.records if r.levelno >= logging.ERROR]
