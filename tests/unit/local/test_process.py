"""Pid-file tracking and stopping, on real short-lived processes (no services)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from stream_app.local.process import is_alive, read_pid, running_pid, start_detached, stop_process

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)", "stream-app-test-sleeper"]
STUBBORN = [
    sys.executable,
    "-c",
    "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
    "time.sleep(60)",
    "stream-app-test-stubborn",
]


def test_detached_process_is_tracked_and_stopped(tmp_path: Path) -> None:
    pid_file, log_file = tmp_path / "p.pid", tmp_path / "p.log"
    pid = start_detached(SLEEPER, pid_file=pid_file, log_file=log_file, cwd=tmp_path)
    assert read_pid(pid_file) == pid
    assert running_pid(pid_file, "stream-app-test-sleeper") == pid
    assert stop_process(pid_file, "stream-app-test-sleeper", grace=5.0) is True
    assert not is_alive(pid)
    assert not pid_file.exists()
    assert stop_process(pid_file, "stream-app-test-sleeper") is False


def test_a_pid_file_naming_another_program_is_not_ours(tmp_path: Path) -> None:
    pid_file = tmp_path / "p.pid"
    pid = start_detached(SLEEPER, pid_file=pid_file, log_file=tmp_path / "p.log", cwd=tmp_path)
    try:
        assert running_pid(pid_file, "kafka.Kafka") is None
        assert stop_process(pid_file, "kafka.Kafka") is False
        assert is_alive(pid)  # an unrelated process behind a stale pid file is left alone
    finally:
        pid_file.write_text(str(pid))
        stop_process(pid_file, "stream-app-test-sleeper", grace=5.0)


def test_a_process_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    pid_file, log_file = tmp_path / "p.pid", tmp_path / "p.log"
    pid = start_detached(STUBBORN, pid_file=pid_file, log_file=log_file, cwd=tmp_path)
    for _ in range(100):  # wait until the SIGTERM handler is installed
        if "ready" in log_file.read_text():
            break
        time.sleep(0.05)
    assert stop_process(pid_file, "stream-app-test-stubborn", grace=0.5) is True
    assert not is_alive(pid)


def test_missing_or_garbage_pid_files(tmp_path: Path) -> None:
    assert read_pid(tmp_path / "none.pid") is None
    garbage = tmp_path / "garbage.pid"
    garbage.write_text("not a pid\n")
    assert read_pid(garbage) is None
    assert running_pid(garbage, "x") is None
