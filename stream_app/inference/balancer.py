"""Choosing which model replica (or device) takes the next window.

Pure selection over a snapshot of each replica's figures, so every strategy is tested on
constructed numbers. With one replica every strategy picks it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Strategy = Literal["round_robin", "least_loaded", "adaptive"]
STRATEGIES: tuple[Strategy, ...] = ("round_robin", "least_loaded", "adaptive")

# Assumed cost of one window (seconds) for a replica that has not finished one yet: it keeps an
# untried replica from looking free of cost, without ruling it out.
DEFAULT_EWMA_SECONDS = 0.5


@dataclass(frozen=True)
class WorkerStats:
    """A snapshot of one replica's load, as the balancer sees it."""

    index: int
    queue_length: int = 0  # jobs waiting in its queue
    in_flight: int = 0  # jobs inside a model call right now
    ewma_seconds: float = 0.0  # recent seconds per job (exponentially weighted); 0 = no data yet
    rss_bytes: int = 0  # resident memory of the process hosting it
    memory_budget_bytes: int = 0  # 0 = no budget, memory not scored
    gpu_memory_bytes: int = 0  # used on its CUDA device; 0 on CPU
    gpu_memory_limit_bytes: int = 0  # the device's budget for this replica; 0 on CPU

    @property
    def load(self) -> int:
        """Jobs this replica still has to finish."""
        return self.queue_length + self.in_flight


def adaptive_score(stats: WorkerStats) -> float:
    """Score a replica: expected seconds until a new job would finish there, inflated by memory pressure.

    ``(load + 1) * seconds_per_job`` is the wait; memory near or over its budget (host RSS, or GPU
    memory on CUDA) multiplies it, so a replica that is about to run out of memory gets work last.
    """
    per_job = stats.ewma_seconds if stats.ewma_seconds > 0 else DEFAULT_EWMA_SECONDS
    pressure = 0.0
    if stats.memory_budget_bytes > 0:
        pressure += _pressure(stats.rss_bytes / stats.memory_budget_bytes)
    if stats.gpu_memory_limit_bytes > 0:
        pressure += _pressure(stats.gpu_memory_bytes / stats.gpu_memory_limit_bytes)
    return (stats.load + 1) * per_job * (1.0 + pressure)


def _pressure(fraction: float) -> float:
    # Free below 80 % of the budget, then steep: at 100 % the cost doubles, beyond it grows fast.
    if fraction <= 0.8:
        return 0.0
    return (fraction - 0.8) * 5.0 if fraction <= 1.0 else 1.0 + (fraction - 1.0) * 20.0


class LoadBalancer:
    """Picks a replica index for the next job; thread-safe (the rotation is the only state)."""

    def __init__(self, strategy: Strategy = "adaptive") -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown load-balancing strategy {strategy!r}; choose from {STRATEGIES}")
        self.strategy: Strategy = strategy
        self._next = 0
        self._lock = threading.Lock()

    def choose(self, stats: Sequence[WorkerStats]) -> int:
        """Return the ``index`` of the replica that should take the next job.

        Ties (equal load or equal score) go to the replica after the last one chosen, so equal
        replicas share work evenly instead of the first one taking it all.
        """
        if not stats:
            raise ValueError("no replicas to choose from")
        with self._lock:
            start = self._next % len(stats)
            order = [stats[(start + i) % len(stats)] for i in range(len(stats))]
            if self.strategy == "round_robin":
                chosen = order[0]
            elif self.strategy == "least_loaded":
                chosen = min(order, key=lambda s: s.load)
            else:
                chosen = min(order, key=adaptive_score)
            position = next(i for i, s in enumerate(stats) if s is chosen)
            self._next = position + 1
            return chosen.index
