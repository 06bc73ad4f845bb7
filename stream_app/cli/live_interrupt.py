"""Ctrl-C ends a live input, wherever the publisher is when it arrives.

Python raises ``KeyboardInterrupt`` at whatever line the main thread is running. A live send spends
its time in two places: waiting for the next block of the pipe, and sending the last one (chunking,
producing, waiting for the broker's acknowledgement). Ctrl-C while waiting ends the input at once;
Ctrl-C while sending must not tear the send apart (the stream would lose its end-of-stream chunk and
the command would fail), so it is noted and the input ends before the next read. A second Ctrl-C
while the first is still being honoured interrupts at once, as a user pressing it again expects.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import Any


class LiveInterrupt:
    """Within ``with``, SIGINT ends the blocks of :meth:`until_interrupted` instead of the program."""

    def __init__(self) -> None:
        self._waiting = False
        self.requested = False
        self._previous: Any = signal.SIG_DFL  # what signal.signal returned: a handler, SIG_DFL, SIG_IGN or None

    def __enter__(self) -> LiveInterrupt:
        self._previous = signal.signal(signal.SIGINT, self._on_signal)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL if self._previous is None else self._previous)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        again = self.requested
        self.requested = True
        if self._waiting or again:
            raise KeyboardInterrupt

    def until_interrupted(self, blocks: Iterator[bytes]) -> Iterator[bytes]:
        """Pass the blocks on until the input ends or Ctrl-C arrives; say so when it was Ctrl-C."""
        while not self.requested:
            self._waiting = True
            try:
                block = next(blocks)
            except StopIteration:
                return
            except KeyboardInterrupt:
                break
            finally:
                self._waiting = False
            yield block
        print("interrupted: ending the stream", file=sys.stderr, flush=True)
