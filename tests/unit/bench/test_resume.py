"""Resume times and final lags of `bench failover`, from segments' publish times and owner epochs."""

from __future__ import annotations

import pytest
from test_word_lag import segment

from stream_app.bench.resume import Disruption, Published, final_lags_between, resume_times
from stream_app.bench.word_lag import PublishedSegment


def run(stream: str, *points: tuple[float, int]) -> list[Published]:
    """Segments of one stream: (wall seconds, owner epoch)."""
    return [Published(stream, int(at * 1000), epoch) for at, epoch in points]


def test_a_killed_owners_streams_resume_when_the_new_owner_publishes() -> None:
    published = {
        "moved": run("moved", (98.0, 1), (99.5, 1), (106.5, 2), (107.5, 2)),
        "stayed": run("stayed", (99.0, 3), (100.5, 3), (101.5, 3)),  # its owner kept it: not touched
    }
    kill = Disruption("kill", "kill", "r1", at=100.0, until=160.0)
    assert resume_times(published, kill) == {"moved": pytest.approx(6.5)}


def test_a_second_move_in_the_same_window_counts_from_the_streams_own_silence() -> None:
    # taken over at 106.5, taken back by the restarted replica: silent from 120.0 to 123.2
    published = {"s": run("s", (99.0, 1), (106.5, 2), (120.0, 2), (123.2, 3))}
    kill = Disruption("kill", "kill", "r1", at=100.0, until=160.0)
    assert resume_times(published, kill) == {"s": pytest.approx(6.5)}
    later = {"s": run("s", (99.0, 1), (101.0, 2), (120.0, 2), (128.0, 3))}
    assert resume_times(later, kill) == {"s": pytest.approx(8.0)}


def test_a_joining_replica_is_measured_from_the_streams_last_segment() -> None:
    published = {"s": run("s", (99.0, 1), (130.0, 1), (131.8, 2))}
    add = Disruption("scaling", "add", "r4", at=100.0, until=160.0, from_event=False)
    assert resume_times(published, add) == {"s": pytest.approx(1.8)}


def test_a_stream_that_never_resumes_counts_the_whole_window() -> None:
    published = {"s": run("s", (99.0, 1)), "late": run("late", (105.0, 1))}
    kill = Disruption("kill", "kill", "r1", at=100.0, until=160.0)
    assert resume_times(published, kill) == {"s": pytest.approx(60.0)}  # "late" was not live when it hit


def test_a_broker_outage_touches_every_stream_from_when_the_broker_answers() -> None:
    published = {"a": run("a", (80.0, 1), (121.5, 1)), "b": run("b", (79.0, 2), (120.4, 2))}
    broker = Disruption("broker", "broker", "kafka", at=120.0, until=180.0, every_stream=True)
    assert resume_times(published, broker) == {"a": pytest.approx(1.5), "b": pytest.approx(0.4)}


def test_final_lags_are_taken_from_the_words_made_final_in_the_window() -> None:
    origin = 1_000_000
    items = [
        PublishedSegment(segment("s:0:0", True, 0, ("one", 0.0, 1.0)), origin + 3_000),  # before the window
        PublishedSegment(segment("s:0:1", True, 0, ("two", 10.0, 11.0)), origin + 19_000),
        PublishedSegment(segment("s:0:1", True, 0, ("two", 10.0, 11.0)), origin + 25_000),  # a replay: not again
    ]
    lags = final_lags_between({"s": items}, {"s": origin}, start=1_010.0, end=1_070.0)
    assert lags == [pytest.approx(8.0)]
