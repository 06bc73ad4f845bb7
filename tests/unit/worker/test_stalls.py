from __future__ import annotations

from stream_app.worker.acks import PartitionAcks
from stream_app.worker.stalls import ack_head_fault


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_wait_of_the_oldest_unacknowledged_record_is_measured_from_its_reading() -> None:
    clock = Clock()
    acks: PartitionAcks[str] = PartitionAcks(lambda _: None, limit=10, clock=clock)
    assert acks.head_wait() == 0.0
    first, second = acks.add(5, "a"), acks.add(6, "b")
    clock.now += 30
    second.done()  # a later record is done: the head still waits
    assert acks.head_wait() == 30.0
    first.done()
    assert acks.head_wait() == 0.0


def test_a_stuck_head_is_a_fault_unless_something_excuses_the_wait() -> None:
    waits = {0: 12.0, 3: 400.0}
    fault = ack_head_fault(waits, limit=300.0, excuse=None)
    assert fault is not None and "partition 3" in fault and "partition 0" not in fault
    assert ack_head_fault(waits, limit=300.0, excuse="broker") is None  # an outage: readiness shows it
    assert ack_head_fault(waits, limit=300.0, excuse="pool full") is None  # the reader is paused on purpose
    assert ack_head_fault({0: 12.0}, limit=300.0, excuse=None) is None
