from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stream_app.local import HostPort, LocalStackError, ServiceState
from stream_app.local.service import wait_until_answering


def test_summary_says_who_runs_and_whether_it_answers(tmp_path: Path) -> None:
    log = tmp_path / "k.log"
    ours = ServiceState("kafka", HostPort("127.0.0.1", 9092), 1234, True, log).summary
    assert "127.0.0.1:9092" in ours and "pid 1234" in ours and "answering" in ours and str(log) in ours
    foreign = ServiceState("redis", HostPort("127.0.0.1", 6379), None, True, log).summary
    assert "not started by stream-app" in foreign
    stopped = ServiceState("redis", HostPort("127.0.0.1", 6379), None, False, log).summary
    assert "stopped" in stopped and "not answering" in stopped


def test_wait_returns_once_the_probe_succeeds(tmp_path: Path) -> None:
    answers = iter([False, False, True])
    wait_until_answering("svc", lambda: next(answers), pid=None, log_file=tmp_path / "l", timeout=30)


def test_wait_fails_fast_when_the_process_died_and_quotes_its_log(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    log.write_text("starting\nFATAL config broken: Error: bad port\n")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    with pytest.raises(LocalStackError) as info:
        wait_until_answering("svc", lambda: False, pid=proc.pid, log_file=log, timeout=600)
    assert "exited during start-up" in str(info.value)
    assert str(log) in str(info.value)
    assert "bad port" in str(info.value)


def test_wait_times_out_naming_the_log(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    with pytest.raises(LocalStackError, match="did not answer within 0 s") as info:
        wait_until_answering("svc", lambda: False, pid=None, log_file=log, timeout=0)
    assert str(log) in str(info.value)
