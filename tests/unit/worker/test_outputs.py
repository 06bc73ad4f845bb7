from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from faust.exceptions import ProducerSendError

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


class SizeLimitedTopic(RecordingTopic):
    """Refuses a record over ``limit`` bytes (key, value, headers) as a broker does; faust wraps the error."""

    def __init__(self, limit: int, *, wrapped: bool) -> None:
        super().__init__()
        self.limit, self.wrapped, self.refused = limit, wrapped, 0

    async def send(
        self, key: bytes | None = None, value: bytes | None = None, headers: list[tuple[str, bytes]] | None = None
    ) -> asyncio.Future[None]:
        size = len(key or b"") + len(value or b"") + sum(len(n) + len(v) for n, v in headers or [])
        if size > self.limit:
            self.refused += 1
            if self.wrapped:
                try:
                    raise MessageSizeTooLargeError()
                except MessageSizeTooLargeError as exc:
                    raise ProducerSendError(f"Error while sending: {exc!r}") from exc
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            future.set_exception(MessageSizeTooLargeError())
            return future
        return await super().send(key, value, headers)


@pytest.mark.parametrize("wrapped", [False, True], ids=["refused-by-the-broker", "refused-by-the-client"])
async def test_a_dead_letter_too_large_for_its_topic_goes_without_its_value_instead_of_blocking_forever(
    wrapped: bool,
) -> None:
    dlq = SizeLimitedTopic(1000, wrapped=wrapped)
    outputs = Outputs(RecordingTopic(), dlq, DeliveryMonitor(Health()), FAST)
    headers = [("dlq_reason", b"bad_time"), ("dlq_source_offset", b"7")]
    await asyncio.wait_for(outputs.dead_letter(b"s", b"x" * 1001, headers), 5)
    (record,) = dlq.sent
    assert dlq.refused == 1 and record.key == b"s" and record.value is None
    assert record.headers == [*headers, ("dlq_value_dropped", b"1001")]


async def test_a_dead_letter_refused_for_another_reason_is_retried_with_its_value() -> None:
    tries: list[int] = []

    class Flaky(RecordingTopic):
        async def send(
            self, key: bytes | None = None, value: bytes | None = None, headers: list[tuple[str, bytes]] | None = None
        ) -> asyncio.Future[None]:
            tries.append(1)
            if len(tries) < 3:
                raise KafkaConnectionError("broker restarting")
            return await super().send(key, value, headers)

    dlq = Flaky()
    outputs = Outputs(RecordingTopic(), dlq, DeliveryMonitor(Health()), FAST)
    await asyncio.wait_for(outputs.dead_letter(b"s", b"x" * 10, [("dlq_reason", b"bad_time")]), 5)
    assert len(tries) == 3 and [r.value for r in dlq.sent] == [b"x" * 10]


async def test_a_dead_letter_too_large_for_its_own_headers_goes_as_its_dlq_headers_alone() -> None:
    dlq = SizeLimitedTopic(1000, wrapped=False)
    outputs = Outputs(RecordingTopic(), dlq, DeliveryMonitor(Health()), FAST)
    headers = [("x-junk", b"j" * 2000), ("ce_seq", b"4"), ("dlq_reason", b"bad_time"), ("dlq_source_offset", b"7")]
    await asyncio.wait_for(outputs.dead_letter(b"s", b"", headers), 5)  # an empty value: nothing to drop there
    (record,) = dlq.sent
    assert record.key == b"s" and record.value is None
    assert record.headers == [
        ("dlq_reason", b"bad_time"),
        ("dlq_source_offset", b"7"),
        ("dlq_value_dropped", b"0"),
        ("dlq_headers_dropped", b"2"),
    ]


async def test_a_dead_letter_refused_in_every_form_is_acknowledged_and_counted_not_retried_for_ever() -> None:
    dlq = SizeLimitedTopic(10, wrapped=True)
    outputs = Outputs(RecordingTopic(), dlq, DeliveryMonitor(Health()), FAST)
    before = m.DEAD_LETTERS_REFUSED._value.get()
    await asyncio.wait_for(outputs.dead_letter(b"s", b"x" * 50, [("dlq_reason", b"bad_time")]), 5)
    assert dlq.sent == [] and dlq.refused == 3  # whole, without its value, bare
    assert m.DEAD_LETTERS_REFUSED._value.get() - before == 1
