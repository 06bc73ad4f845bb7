"""A fault-injection hook for tests and chaos runs: make chosen windows' inference fail.

Set by the operator only (``worker.inject_window_failures``, never from a topic), e.g.
``"mic-7:2:2"``: the final window 2 of stream ``mic-7`` fails its first two attempts, as a model
error would. Everything else runs for real, so a test sees exactly what a failing window does to
the transcript, the dead-letter topic and the stream after it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from stream_app.inference.exceptions import InferenceError
from stream_app.inference.types import Priority, WindowJob, WindowTranscript

Transcribe = Callable[[WindowJob], Awaitable[WindowTranscript]]


class InjectedFailure(InferenceError):
    """The failure `FaultInjector` raises in place of a model error."""


def parse_window_failures(spec: str) -> dict[tuple[str, int], int]:
    """Read ``"<stream>:<window>:<times>,..."`` (a stream id may itself hold colons).

    Raises:
        ValueError: an entry is not ``stream:window:times`` with whole numbers.
    """
    plan: dict[tuple[str, int], int] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        stream, window, times = entry.rsplit(":", 2)
        if not stream or int(window) < 0 or int(times) < 1:
            raise ValueError(f"{entry!r}: expected <stream>:<window index>:<times>")
        plan[(stream, int(window))] = int(times)
    return plan


@dataclass
class FaultInjector:
    """Wraps a transcribe call; fails the planned final windows their planned number of times."""

    transcribe: Transcribe
    plan: dict[tuple[str, int], int]
    failed: dict[tuple[str, int], int] = field(default_factory=dict)

    async def __call__(self, job: WindowJob) -> WindowTranscript:
        """Transcribe, unless this final window is planned to fail once more."""
        key = (job.stream_id, job.window_index)
        if job.priority == Priority.FINAL and self.failed.get(key, 0) < self.plan.get(key, 0):
            self.failed[key] = self.failed.get(key, 0) + 1
            raise InjectedFailure(f"injected failure {self.failed[key]} of window {job.window_index}")
        return await self.transcribe(job)
