"""Reading a replica's exposition for `bench failover`, and each event's window."""

from __future__ import annotations

from stream_app.bench.resume import Disruption
from stream_app.testing.disruptions import close_windows, live_streams, owned_partitions

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
