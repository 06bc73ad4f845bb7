"""`local run`'s command gets the SIGTERM its parent gets, and the parent waits for it to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from stream_app.cli.child_process import run_forwarding_signals


def _child(marker: Path) -> list[str]:
    code = textwrap.dedent(
        f"""
        import pathlib, signal, sys, time
        def stop(signum, frame):
            pathlib.Path({str(marker)!r}).write_text("cleaned up")
            sys.exit(7)
        signal.signal(signal.SIGTERM, stop)
        pathlib.Path({str(marker)!r}).write_text("ready")
        time.sleep(60)
        """
    )
    return [sys.executable, "-c", code]


def test_sigterm_is_passed_on_and_the_commands_status_returned(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    before = signal.getsignal(signal.SIGTERM)

    def terminate_when_ready() -> None:
        deadline = time.monotonic() + 30
        while not (marker.exists() and marker.read_text() == "ready"):
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)  # as a CI timeout stops `stream-app local run`

    threading.Thread(target=terminate_when_ready, daemon=True).start()
    assert run_forwarding_signals(_child(marker)) == 7
    assert marker.read_text() == "cleaned up"  # the command ran its own cleanup before the parent went on
    assert signal.getsignal(signal.SIGTERM) is before


def test_local_run_stops_with_its_command_when_terminated(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    runner = subprocess.Popen(
        [sys.executable, "-c", f"from stream_app.cli.child_process import run_forwarding_signals as r; "
         f"import sys; sys.exit(r({_child(marker)!r}))"]
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (marker.exists() and marker.read_text() == "ready"):
        assert time.monotonic() < deadline, "the command did not start"
        time.sleep(0.05)
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(30) == 7
    assert marker.read_text() == "cleaned up"
