"""`stream-app publish` says what the workers did with the stream; `tail --until-end-of-stream` never fakes success."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream_app.config import Settings
from stream_app.testing.service import ServiceHarness

STREAM_APP = [sys.executable, "-m", "stream_app.cli.main"]


@pytest.fixture
def harness(settings: Settings) -> Iterator[ServiceHarness]:
    with ServiceHarness(settings, partitions=2) as service:
        yield service


def _cli(harness: ServiceHarness, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STREAM_APP, *args], env=harness.worker_env(), capture_output=True, text=True, timeout=400, check=False
    )


def test_publish_says_when_no_worker_reads_the_stream(harness: ServiceHarness, jfk_path: Path) -> None:
    result = _cli(harness, "publish", str(jfk_path), "--stream-id", "nobody-reads", "--confirm", "3", "--realtime")
    assert result.returncode == 0, result.stderr
    assert "published stream nobody-reads: 110 chunks" in result.stdout
    assert f"no worker is in group {harness.group_id!r}" in result.stderr
    # a real-time send says how far it got every 5 s (11 s of audio: twice)
    progress = [line for line in result.stderr.splitlines() if line.startswith("sent ")]
    assert len(progress) == 2, result.stderr
    assert " of 11.0 s of nobody-reads (" in progress[0] and "refused by the workers so far: none" in progress[0]


def test_a_reused_stream_id_is_reported_refused_and_fails(harness: ServiceHarness, jfk_path: Path) -> None:
    harness.start("r1")
    first = _cli(harness, "publish", str(jfk_path), "--stream-id", "twice", "--confirm", "300")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "read by the workers: none of the 110 chunks refused" in first.stdout

    again = _cli(harness, "publish", str(jfk_path), "--stream-id", "twice", "--confirm", "300")
    assert again.returncode == 1, again.stdout + again.stderr
    assert "the workers refused all of the 110 chunks of twice (after_end: 110)" in again.stderr
    assert "publish under a new stream id" in again.stderr

    ended = _cli(
        harness, "tail", "--stream-id", "twice", "--from-beginning", "--until-end-of-stream", "--timeout", "60"
    )
    assert ended.returncode == 0, ended.stderr
    assert "final transcript of twice: And so my fellow Americans" in ended.stdout


def test_tail_prints_no_transcript_for_a_stream_that_never_ended(harness: ServiceHarness) -> None:
    result = _cli(harness, "tail", "--stream-id", "never-sent", "--until-end-of-stream", "--timeout", "3")
    assert result.returncode == 1
    assert "final transcript" not in result.stdout
    assert "no end of stream never-sent within 3 s (0 final segment(s) so far)" in result.stderr
