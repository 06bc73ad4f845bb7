from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from stream_app.metrics import worker_metrics as m
from stream_app.metrics.health import Health
from stream_app.testing.segments import make_segment
from stream_app.testing.topics import RecordingTopic
from stream_app.worker.exceptions import Fenced
from stream_app.worker.outputs import REPLICA_HEADER, DeliveryMonitor, Outputs
from stream_app.worker.retry import Backoff
from stream_app.worker.tables import EPOCH_HEADER

FAST = Backoff(0.001, 0.001)


def errors(kind: str) -> float:
    return float(m.PROCESSING_ERRORS.labels(kind=kind)._value.get())


def failing(error: Callable[[], Exception], tries: list[int]) -> Callable[[], asyncio.Future[None]]:
    def write() -> asyncio.Future[None]:
        tries.append(1)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_exception(error())
        return future

    return write


async def retried(outputs: Outputs, write: Callable[[], asyncio.Future[None]], tries: list[int], n: int) -> None:
    """Run a state write that keeps failing until it was tried ``n`` times, then stop it (a revocation)."""
    task = asyncio.create_task(outputs.durable(write, "storing a stream's state"))
    while len(tries) < n:
        await asyncio.sleep(0.001)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_state_write_failing_on_a_bug_of_ours_turns_liveness_red_and_counts_as_a_bug() -> None:
    health = Health()
    outputs = Outputs(RecordingTopic(), RecordingTopic(), DeliveryMonitor(health), FAST)
    tries: list[int] = []
    bugs, broker = errors("bug"), errors("broker")
    task = asyncio.create_task(
        outputs.durable(failing(lambda: ValueError("cannot encode NaN"), tries), "storing a stream's state")
    )
    while len(tries) < 4:
        await asyncio.sleep(0.001)
    alive, reason = health.alive()
    assert not alive and "storing a stream's state" in reason and "ValueError" in reason
    assert errors("bug") - bugs >= 4 and errors("broker") == broker
    task.cancel()  # the partition was revoked: that loop is over
    await asyncio.gather(task, return_exceptions=True)
    assert health.alive()[0]


async def test_a_broker_outage_is_retried_with_liveness_green() -> None:
    health = Health()
    outputs = Outputs(RecordingTopic(), RecordingTopic(), DeliveryMonitor(health), FAST)
    tries: list[int] = []
    broker = errors("broker")
    await retried(outputs, failing(lambda: ConnectionError("broker restarting"), tries), tries, 10)
    assert health.alive()[0]
    assert not health.ready()[0]  # readiness shows the outage
    assert errors("broker") - broker >= 10


async def test_a_write_of_an_owner_that_lost_its_partition_is_not_retried() -> None:
    outputs = Outputs(RecordingTopic(), RecordingTopic(), DeliveryMonitor(Health()), FAST)
    tries: list[int] = []
    with pytest.raises(Fenced):
        await outputs.durable(failing(lambda: Fenced("partition 0: owner epoch 2 now"), tries), "storing")
    assert len(tries) == 1


async def test_every_segment_names_the_replica_and_owner_epoch_that_published_it() -> None:
    topic = RecordingTopic()
    outputs = Outputs(topic, RecordingTopic(), DeliveryMonitor(Health()), FAST, replica="stream-app-worker-1")
    await outputs.publish([make_segment("s", 0, "hello"), make_segment("s", 1, "world")], epoch=7)
    assert [dict(r.headers or []) for r in topic.sent] == [
        {REPLICA_HEADER: b"stream-app-worker-1", EPOCH_HEADER: b"7"}
    ] * 2
