"""Reading a replica's exposition for `bench failover`, and each event's window."""

from __future__ import annotations

from stream_app.bench.resume import Disruption
from stream_app.testing.disruptions import (
    close_windows,
    live_streams,
    owned_partitions,
    signal_to_leave,
    stop_leave_times,
)

EXPOSITION = """# HELP stream_app_live_streams Streams with state held by this replica
stream_app_live_streams 5.0
stream_app_partition_owned{partition="0"} 1.0
stream_app_partition_owned{partition="3"} 1.0
"""


def test_the_streams_and_partitions_a_replica_holds_are_read_from_its_metrics() -> None:
    assert live_streams(EXPOSITION) == 5.0 and live_streams("") == 0.0
    assert owned_partitions(EXPOSITION) == {0, 3}


def test_each_event_lasts_until_the_next_and_the_last_until_the_end() -> None:
    events = [Disruption("kill", "kill", "r1", 10.0, 10.0), Disruption("broker", "broker", "kafka", 50.0, 50.0)]
    assert [(e.at, e.until) for e in close_windows(events, 90.0)] == [(10.0, 50.0), (50.0, 90.0)]
    assert close_windows([], 90.0) == []


STOP_LOG = """[2026-12-07 16:41:09,289] [9926] [INFO] [^Worker]: Signal received: 15 (15)
[2026-12-07 16:41:10,389] [9926] [INFO] handed over in 1.08 s: 1 step(s) finished, 6 left to the next owner
+Topic Partition Set--+------------+
[2026-12-07 16:41:10,434] [9926] [INFO] left the consumer group in 0.04 s, before closing the tables and the consumer
[2026-12-07 16:41:11,020] [9926] [INFO] LeaveGroup request succeeded
"""


def test_a_stop_is_timed_from_its_signal_to_its_first_leave_group_answer() -> None:
    assert signal_to_leave(STOP_LOG) == 1.145
    earlier = "[2026-12-07 16:30:00,000] [9000] [INFO] [^Worker]: Signal received: 15 (15)\n"
    earlier += "[2026-12-07 16:30:00,500] [9000] [INFO] LeaveGroup request succeeded\n"  # aiokafka's, before
    assert signal_to_leave(earlier + STOP_LOG) == 1.145  # the replica's last stop (its log spans restarts)
    assert stop_leave_times(earlier + STOP_LOG) == [0.5, 1.145]


def test_a_stop_without_a_leave_group_answer_is_reported_as_none() -> None:
    assert signal_to_leave(STOP_LOG.split("[2026-12-07 16:41:10,434]")[0]) is None  # left by session timeout
    assert signal_to_leave("[2026-12-07 16:41:10,434] [9926] [INFO] LeaveGroup request succeeded") is None
