from __future__ import annotations

import io
import logging

from mode.utils.logging import ExtensionFormatter

from stream_app.worker.log_limits import BurstFilter


def record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


def test_a_library_repeating_itself_is_heard_once_per_interval_with_a_count() -> None:
    now = [0.0]
    burst = BurstFilter(every=5.0, clock=lambda: now[0])
    passed = []
    for step in range(1000):  # 20 s of an outage, 50 connection errors a second
        now[0] = step * 0.02
        rec = record("aiokafka.conn", "Unable connect to node with id %s: %s", 1, "refused")
        if burst.filter(rec):
            passed.append(rec.getMessage())
    assert len(passed) == 4
    assert passed[0] == "Unable connect to node with id 1: refused"
    assert passed[1].endswith("(249 more like this in the last 5 s)")


def test_our_own_records_and_other_messages_are_not_limited() -> None:
    burst = BurstFilter(every=5.0, clock=lambda: 0.0)
    assert all(burst.filter(record("stream_app.worker.steps", "window failed")) for _ in range(10))
    assert burst.filter(record("aiokafka.conn", "first kind"))
    assert burst.filter(record("aiokafka.conn", "second kind"))
    assert not burst.filter(record("aiokafka.conn", "first kind"))


def test_table_recovery_reports_each_role_s_offsets_even_within_the_interval() -> None:
    # faust logs the active and then the standby start offsets under one template, moments apart
    burst = BurstFilter(every=5.0, clock=lambda: 0.0)
    template = "%s offsets at start of reading:\n%s"
    assert burst.filter(record("faust.tables.recovery", template, "Active", "t 0 28"))
    assert burst.filter(record("faust.tables.recovery", template, "Standby", "t 1 12"))


def test_a_record_with_a_count_is_printed_by_the_worker_logs_formatter() -> None:
    # faust's worker logs through mode's ExtensionFormatter, which turns args of None into (None,)
    now = [0.0]
    burst = BurstFilter(every=5.0, clock=lambda: now[0])
    for step in range(3):
        now[0] = step * 3.0  # the second is dropped, the third passes with a count
        rec = record("faust.transport.consumer", "%s fetch failed:\n%s", "Stream", "| table |")
        passed = burst.filter(rec)
    assert passed
    text = ExtensionFormatter(stream=io.StringIO(), fmt="%(message)s").format(rec)
    assert text == "Stream fetch failed:\n| table | (1 more like this in the last 6 s)"
