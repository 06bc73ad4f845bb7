"""The control figure of `bench failover`: the undisturbed run's time to the next segment at the same moment."""

from __future__ import annotations

import pytest

from stream_app.bench.failover_figures import Figures, control_times, event_row, phase_summary
from stream_app.bench.resume import Disruption, Published
from stream_app.testing.verifier import ChunkCensus, TopicOutput


def figures(published: dict[str, list[Published]]) -> Figures:
    return Figures(TopicOutput(), published, {sid: [] for sid in published}, {}, ChunkCensus(0, 0, 0))


def test_the_control_is_read_at_the_same_moment_of_the_undisturbed_run() -> None:
    # the reference run started 1000 s earlier: its moment 1099.0 is the disturbed run's 2099.0
    reference = figures({"s": [Published("s", 1_098_000, 1), Published("s", 1_100_500, 1)]})
    kill = Disruption("kill", "kill", "r1", at=2_099.0, until=2_160.0)
    assert control_times(reference, kill, shift=-1_000.0) == [pytest.approx(1.5)]


def test_an_event_row_names_the_event_and_its_figures() -> None:
    disturbed = figures({"s": [Published("s", 98_000, 1), Published("s", 106_500, 2)]})
    row = event_row(disturbed, Disruption("kill", "kill", "r1", 100.0, 160.0), 60.0, 70.0, [1.5])
    assert row["at_s"] == 30.0 and row["touched"] == 1 and row["resume_max_s"] == 6.5
    assert row["control_p95_s"] == 1.5 and row["final_lag_p95_s"] is None


def test_a_phase_of_stops_reports_its_slowest_leave_and_every_stop_that_never_left() -> None:
    disturbed = figures({"s": [Published("s", 98_000, 1), Published("s", 106_500, 2)]})
    stops = [
        Disruption("rolling", "terminate", "r1", 100.0, 130.0, left_group_s=1.04),
        Disruption("rolling", "terminate", "r2", 130.0, 160.0, left_group_s=1.98),
    ]
    summary = phase_summary(disturbed, stops, "rolling", 60.0, [1.5])
    assert summary["rolling_stop_left_group_max_s"] == 1.98 and summary["rolling_stops_not_leaving_group"] == 0
    stops.append(Disruption("rolling", "terminate", "r3", 160.0, 190.0))
    summary = phase_summary(disturbed, stops, "rolling", 60.0, [1.5])
    assert summary["rolling_stops_not_leaving_group"] == 1
    assert event_row(disturbed, stops[0], 60.0, 70.0, [1.5])["left_group_s"] == 1.04
    kills = phase_summary(disturbed, [Disruption("kill", "kill", "r1", 100.0, 160.0)], "kill", 60.0, [1.5])
    assert "kill_stop_left_group_max_s" not in kills  # a kill leaves nothing: the session times out
