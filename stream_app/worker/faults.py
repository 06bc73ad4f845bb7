"""Fault-injection hooks for tests and chaos runs: make chosen windows' inference fail or crash.

Set by the operator only (``worker.inject_window_failures``, ``worker.inject_window_crashes``, never
from a topic), e.g. ``"mic-7:2:2"``: the final window 2 of stream ``mic-7`` fails its first two
attempts, as a model error would; ``"mic-7:2"``: the process dies (exit status 70) each time the
model starts that window, as a window that crashes CTranslate2 would. Everything else runs for real,
so a test sees exactly what such a window does to the transcript, the dead-letter topic, the other
streams and the stream after it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from stream_app.inference.exceptions import InferenceError
from stream_app.inference.types import Priority, WindowJob, WindowTranscript

Transcribe = Callable[[WindowJob], Awaitable[WindowTranscript]]
CRASH_EXIT_STATUS = 70

log = logging.getLogger(__name__)


class InjectedFailure(InferenceError):
    """The failure `FaultInjector` raises in place of a model error."""


def _entries(spec: str, numbers: tuple[str, ...]) -> Iterator[tuple[str, list[int]]]:
    """Read ``"<stream>:<n1>[:<n2>],..."``: a stream id (which may itself hold colons) and whole numbers."""
    usage = ":".join(("<stream>", *(f"<{n}>" for n in numbers)))
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        stream, *rest = entry.rsplit(":", len(numbers))
        try:
            values = [int(v) for v in rest]
        except ValueError:
            values = []
        if not stream or len(values) != len(numbers) or any(v < 0 for v in values):
            raise ValueError(f"{entry!r}: expected {usage}")
        yield stream, values


def parse_window_failures(spec: str) -> dict[tuple[str, int], int]:
    """Read ``"<stream>:<window>:<times>,..."``.

    Raises:
        ValueError: an entry is not ``stream:window:times`` with whole numbers (times at least 1).
    """
    plan: dict[tuple[str, int], int] = {}
    for stream, (window, times) in _entries(spec, ("window index", "times")):
        if times < 1:
            raise ValueError(f"{stream}:{window}:{times}: a window fails at least once")
        plan[(stream, window)] = times
    return plan


def parse_window_crashes(spec: str) -> set[tuple[str, int]]:
    """Read ``"<stream>:<window>,..."``.

    Raises:
        ValueError: an entry is not ``stream:window`` with a whole number.
    """
    return {(stream, window) for stream, (window,) in _entries(spec, ("window index",))}


def _crash_when_started(job: WindowJob) -> Callable[[], None]:
    before = job.on_start

    def on_start() -> None:
        if before is not None:
            before()
        log.critical("injected crash: the model started window %d of %s", job.window_index, job.stream_id)
        logging.shutdown()
        os._exit(CRASH_EXIT_STATUS)

    return on_start


@dataclass
class FaultInjector:
    """Wraps a transcribe call; fails the planned final windows their planned number of times, or crashes on them."""

    transcribe: Transcribe
    plan: dict[tuple[str, int], int]
    crashes: set[tuple[str, int]] = field(default_factory=set)
    failed: dict[tuple[str, int], int] = field(default_factory=dict)

    async def __call__(self, job: WindowJob) -> WindowTranscript:
        """Transcribe, unless this final window is planned to fail once more."""
        key = (job.stream_id, job.window_index)
        if job.priority == Priority.FINAL and self.failed.get(key, 0) < self.plan.get(key, 0):
            self.failed[key] = self.failed.get(key, 0) + 1
            raise InjectedFailure(f"injected failure {self.failed[key]} of window {job.window_index}")
        if job.priority == Priority.FINAL and key in self.crashes:
            job = dataclasses.replace(job, on_start=_crash_when_started(job))
        return await self.transcribe(job)
