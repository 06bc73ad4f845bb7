"""What every local service reports about itself, and the wait loop that starts share."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stream_app.local.endpoints import HostPort
from stream_app.local.exceptions import LocalStackError
from stream_app.local.logfile import read_log_excerpt
from stream_app.local.process import is_alive


@dataclass(frozen=True)
class ServiceState:
    """One service as `stream-app local status` shows it."""

    name: str
    endpoint: HostPort
    pid: int | None
    answering: bool
    log_file: Path

    @property
    def summary(self) -> str:
        """One line for humans: who runs what where."""
        if self.pid is not None:
            who = f"pid {self.pid}"
        elif self.answering:
            who = "not started by stream-app"
        else:
            who = "stopped"
        health = "answering" if self.answering else "not answering"
        return f"{self.name:<6} {self.endpoint!s:<22} {who:<26} {health:<14} log: {self.log_file}"


def wait_until_answering(
    name: str, probe: Callable[[], bool], *, pid: int | None, log_file: Path, timeout: float
) -> None:
    """Poll ``probe`` until it succeeds; fail fast when the process died, else after ``timeout``.

    Raises:
        LocalStackError: naming the log file and quoting its last lines.
    """
    deadline = time.monotonic() + timeout
    while True:
        if probe():
            return
        if pid is not None and not is_alive(pid):
            raise LocalStackError(
                f"{name} (pid {pid}) exited during start-up; see {log_file}\n{read_log_excerpt(log_file)}"
            )
        if time.monotonic() >= deadline:
            raise LocalStackError(
                f"{name} did not answer within {timeout:.0f} s; see {log_file}\n{read_log_excerpt(log_file)}"
            )
        time.sleep(0.5)
