"""A benchmark stopped with SIGTERM stops what it started (replicas run in sessions of their own)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from stream_app.cli.bench import stop_cleanly_on_termination


def test_sigterm_unwinds_the_benchmark_and_the_handlers_are_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    unwound = []
    with pytest.raises(SystemExit) as stopped, stop_cleanly_on_termination():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # not reached: the handler raises at the next bytecode
        finally:
            unwound.append(True)
    assert stopped.value.code == 128 + signal.SIGTERM
    assert unwound == [True]
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_terminated_benchmark_leaves_no_child_of_its_own_session_running(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = textwrap.dedent(
        f"""
        import subprocess, sys, time
        from stream_app.cli.bench import stop_cleanly_on_termination
        with stop_cleanly_on_termination():
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
            try:
                open({str(pid_file)!r}, "w").write(str(child.pid))
                time.sleep(600)
            finally:
                child.terminate()
                child.wait(10)
        """
    )
    bench = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the stand-in benchmark did not start its child"
        time.sleep(0.1)
    child = int(pid_file.read_text())
    bench.send_signal(signal.SIGTERM)
    assert bench.wait(30) == 128 + signal.SIGTERM
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # reaped by the benchmark's cleanup, not left running
