"""Run a command as a child that receives the stop signals its parent receives.

`stream-app local run -- COMMAND` stops the services it started once the command ends. Stopped
with SIGTERM or SIGHUP (a CI timeout, a closed terminal), Python's default would end the parent at
once: the command would go on, and Kafka and Redis with it. Here the signal is passed on to the
command, the parent waits for it to end, and only then goes on to its cleanup. Ctrl-C reaches the
whole foreground process group, so the command has it already; the parent waits for it too, and a
second Ctrl-C stops waiting (the command is then killed).
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence
from types import FrameType

FORWARDED = (signal.SIGTERM, signal.SIGHUP)


def run_forwarding_signals(command: Sequence[str]) -> int:
    """Run ``command``; SIGTERM and SIGHUP are passed on to it. Return its exit status.

    Raises:
        FileNotFoundError: the command does not exist.
    """
    child = subprocess.Popen(list(command))

    def forward(signum: int, frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in FORWARDED}
    try:
        try:
            return child.wait()
        except KeyboardInterrupt:  # the command got it as well: let it finish its own cleanup
            return child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        if child.poll() is None:
            child.kill()
            child.wait()
