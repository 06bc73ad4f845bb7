"""Reading a worker's metrics text and memory from outside."""

from __future__ import annotations

import os

from stream_app.testing.worker_probe import metric_by_label, metric_total, process_rss_mb

EXPOSITION = """\
# HELP stream_app_streams_evicted_total Streams whose state was evicted, by cause
# TYPE stream_app_streams_evicted_total counter
stream_app_streams_evicted_total{cause="idle"} 9998.0
stream_app_streams_evicted_total{cause="end_of_stream"} 2.0
stream_app_streams_evicted_created{cause="idle"} 1.7e+09
stream_app_live_streams 0.0
stream_app_live_streams_extra 5.0
"""


def test_metric_total_sums_every_label_set_of_exactly_that_metric() -> None:
    assert metric_total(EXPOSITION, "stream_app_streams_evicted_total") == 10_000.0
    assert metric_total(EXPOSITION, "stream_app_live_streams") == 0.0
    assert metric_total(EXPOSITION, "stream_app_window_errors_total") is None


def test_metric_by_label_splits_a_counter_by_one_label() -> None:
    by_cause = metric_by_label(EXPOSITION, "stream_app_streams_evicted_total", "cause")
    assert by_cause == {"idle": 9998.0, "end_of_stream": 2.0}
    assert metric_by_label(EXPOSITION, "stream_app_live_streams", "cause") == {}


def test_process_rss_counts_a_live_process_and_nothing_for_a_gone_one() -> None:
    assert process_rss_mb(os.getpid()) > 10.0
    assert process_rss_mb(2**22 + 12345) == 0.0
