"""Detached background processes tracked by pid files, stopped with SIGTERM then SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from stream_app.local.exceptions import LocalStackError


def read_pid(pid_file: Path) -> int | None:
    """Return the pid recorded in ``pid_file``, or None when there is none or it is garbage."""
    try:
        text = pid_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def running_pid(pid_file: Path, marker: str) -> int | None:
    """Return the pid of a live process recorded in ``pid_file`` whose command line contains ``marker``.

    The marker guards against a stale pid file whose number was reused by an unrelated process.
    """
    pid = read_pid(pid_file)
    if pid is None:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            _reap(pid)
            return None
        cmdline = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return pid if marker in cmdline else None


def start_detached(argv: Sequence[str], *, pid_file: Path, log_file: Path, cwd: Path) -> int:
    """Start ``argv`` in its own session (it outlives this process), output appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(
            list(argv), stdin=devnull, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True
        )
    pid_file.write_text(f"{proc.pid}\n", encoding="utf-8")
    return proc.pid


def stop_process(pid_file: Path, marker: str, *, grace: float = 20.0) -> bool:
    """Stop the process of ``pid_file``: SIGTERM, wait up to ``grace`` seconds, then SIGKILL.

    Returns:
        True when a running process was stopped, False when none was running.
    """
    pid = running_pid(pid_file, marker)
    pid_file.unlink(missing_ok=True)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_gone(pid, grace):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not _wait_gone(pid, 5.0):
            raise LocalStackError(f"process {pid} ({marker}) survived SIGKILL")
    return True


def is_alive(pid: int) -> bool:
    """Return whether ``pid`` runs (a zombie does not count, and is reaped when it is our child)."""
    try:
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return True
    except psutil.NoSuchProcess:
        return False
    _reap(pid)
    return False


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.1)
    return not is_alive(pid)


def _reap(pid: int) -> None:
    """Collect the exit status of our own dead child so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
