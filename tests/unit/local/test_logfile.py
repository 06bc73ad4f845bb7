from __future__ import annotations

from pathlib import Path

from stream_app.local.logfile import log_excerpt, read_log_excerpt

KAFKA_LOG = """\
[2026-01-01 00:00:00,000] INFO Starting (kafka.Kafka)
[2026-01-01 00:00:01,000] ERROR Unable to start acceptor for CONTROLLER (kafka.network.DataPlaneAcceptor)
org.apache.kafka.common.KafkaException: Socket server failed to bind: Address already in use.
\tat java.base/sun.nio.ch.Net.bind0(Native Method)
[2026-01-01 00:00:02,000] INFO shutting down (kafka.Kafka)
"""


def test_excerpt_puts_the_first_errors_before_the_last_lines() -> None:
    text = log_excerpt(KAFKA_LOG, last=1)
    errors, last = text.split("last lines:\n")
    assert "ERROR Unable to start acceptor" in errors
    assert "Address already in use" in errors
    assert "Starting" not in errors
    assert last == "[2026-01-01 00:00:02,000] INFO shutting down (kafka.Kafka)"


def test_excerpt_without_errors_has_only_the_tail() -> None:
    text = log_excerpt("one\ntwo\nthree\n", last=2)
    assert text == "last lines:\ntwo\nthree"


def test_excerpt_of_an_empty_or_missing_log(tmp_path: Path) -> None:
    assert "(empty log)" in log_excerpt("")
    assert read_log_excerpt(tmp_path / "absent.log") == "(no log file yet)"
