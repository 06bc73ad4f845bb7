"""The micro-batching policy and fault isolation, as pure logic the pool threads run.

Kept apart from the threads and the model so the rules (how long to wait for company, how big a batch
may grow, what a failed batch means for each of its jobs) are unit-tested in milliseconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from stream_app.inference.types import WindowJob, WindowTranscript

T = TypeVar("T")


class BatchTranscriber(Protocol):
    """What the pool needs from a model: one call transcribing windows of many streams together."""

    def transcribe_windows(self, jobs: Sequence[WindowJob]) -> list[WindowTranscript]:
        """Transcribe every job; the result list matches ``jobs`` one to one, in order."""
        ...


@dataclass(frozen=True)
class BatchPolicy:
    """How a worker forms a batch: up to ``max_batch`` jobs, waiting at most ``max_wait`` s for more."""

    max_batch: int = 8
    max_wait: float = 0.005

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {self.max_batch}")
        if self.max_wait < 0:
            raise ValueError(f"max_wait must not be negative, got {self.max_wait}")

    def remaining_wait(self, started_at: float, now: float) -> float:
        """Seconds still allowed to wait for more jobs in a batch begun at ``started_at``."""
        return max(0.0, started_at + self.max_wait - now)

    def is_full(self, size: int) -> bool:
        """Whether a batch of ``size`` jobs must go now."""
        return size >= self.max_batch


# Resident memory a batched call needs on top of the process's settled RSS (base int8 on CPU): each
# window in a batch holds about 100 MB of CTranslate2 working memory while the call runs (freed
# after it), and the first call also grows the settled RSS by about as much once. Set from a one-off
# probe of the peak RSS of batches of 1, 2 and 4 jfk windows in one process (no repo command prints
# it); `stream-app bench precision` prints the worker's resulting peak under the 512 MB budget.
WINDOW_WORKING_BYTES = 100 * 1024 * 1024
FIRST_CALL_BYTES = 100 * 1024 * 1024


def batch_limit_for_memory(
    max_batch: int, rss: int, budget: int, per_job: int = WINDOW_WORKING_BYTES, reserve: int = 0
) -> int:
    """Return how many jobs the next batch may hold so the process stays inside its memory budget.

    ``reserve`` is memory the call will need whatever its size (the first call's working memory,
    not yet part of ``rss``). Without a budget (0) the configured ``max_batch`` applies; over
    budget, jobs still run one at a time (never zero: a stream must not stall because the model
    alone is large).
    """
    if budget <= 0:
        return max_batch
    return max(1, min(max_batch, (budget - rss - reserve) // per_job))


def gather_batch(
    first: T,
    poll: Callable[[float], T | None],
    policy: BatchPolicy,
    clock: Callable[[], float] = time.monotonic,
) -> list[T]:
    """Collect a batch behind ``first``: poll for more until the batch is full or the wait is spent.

    ``poll(timeout)`` returns the next ready item, or ``None`` when none came within ``timeout``
    seconds (a timeout of 0 means "only if one is ready now"). Jobs already queued are always taken
    up to ``max_batch``, even after the wait is spent, since they cost no extra latency.
    """
    batch = [first]
    started = clock()
    while not policy.is_full(len(batch)):
        item = poll(policy.remaining_wait(started, clock()))
        if item is None:
            break
        batch.append(item)
    return batch


@dataclass(frozen=True)
class JobFailure:
    """Why one job of a batch produced no transcript."""

    reason: str
    error: BaseException


Outcome = WindowTranscript | JobFailure


def run_isolated(transcriber: BatchTranscriber, jobs: Sequence[WindowJob]) -> list[Outcome]:
    """Run a batch; if the batched call fails, retry each job alone so one bad job fails only itself.

    Returns one outcome per job, in order. A batched call that returns the wrong number of results
    is treated as a failure of the batch (and so retried job by job).
    """
    try:
        results = transcriber.transcribe_windows(jobs)
        if len(results) != len(jobs):
            raise RuntimeError(f"transcriber returned {len(results)} results for {len(jobs)} jobs")
        return list(results)
    except Exception as exc:
        if len(jobs) == 1:
            return [JobFailure(_describe(exc), exc)]
    outcomes: list[Outcome] = []
    for job in jobs:
        try:
            single = transcriber.transcribe_windows([job])
            if len(single) != 1:
                raise RuntimeError(f"transcriber returned {len(single)} results for 1 job")
            outcomes.append(single[0])
        except Exception as exc:
            outcomes.append(JobFailure(_describe(exc), exc))
    return outcomes


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
