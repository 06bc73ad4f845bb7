"""Faults on a timeline, in the style of Kafka Streams' system tests.

SIGKILL a random replica every few seconds (restarting it at once), stop the broker once, restart
Redis once, and bring back any replica that died on its own (counted: nobody planned that exit).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from stream_app.testing.private_stack import PrivateStack
from stream_app.testing.service import ServiceHarness

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaultPlan:
    """When and how hard to hit; times are seconds after `FaultInjector.start`."""

    kill_interval: tuple[float, float] = (5.0, 15.0)  # the next SIGKILL comes uniformly within this
    max_kills: int | None = None  # None: keep killing until stopped
    broker_at: float | None = None  # None: no broker restart
    broker_down: float = 25.0  # the broker stays stopped this long after it exited
    redis_at: float | None = None
    redis_down: float = 3.0
    seed: int = 1


@dataclass(frozen=True)
class FaultEvent:
    """One thing that happened: ``kind`` is kill, broker, redis or unplanned_exit."""

    kind: str
    target: str
    at: float  # seconds after the start
    seconds: float = 0.0  # outage length for broker and redis


@dataclass
class FaultInjector:
    """Run a `FaultPlan` against a harness's replicas and a private stack, from a background thread."""

    harness: ServiceHarness
    stack: PrivateStack
    plan: FaultPlan
    report: Callable[[str], None] = print
    events: list[FaultEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._kills_stopped = threading.Event()
        self._random = random.Random(self.plan.seed)
        self._thread = threading.Thread(target=self._run, name="fault-injector", daemon=True)
        self._started = 0.0
        self.error: BaseException | None = None

    def start(self) -> None:
        """Start the timeline now."""
        self._started = time.monotonic()
        self._thread.start()

    def stop_kills(self) -> None:
        """Stop killing replicas (outages still due are skipped too); keep reviving those that exit."""
        self._kills_stopped.set()

    def stop(self) -> None:
        """End the timeline and wait for the thread (an outage under way finishes first)."""
        self._stop.set()
        self._thread.join()

    def count(self, kind: str) -> int:
        """How many events of ``kind`` happened."""
        return sum(1 for e in self.events if e.kind == kind)

    def _run(self) -> None:
        try:
            self._timeline()
        except BaseException as exc:  # reported by the benchmark, which then stops
            self.error = exc
            log.exception("fault injector failed")

    def _timeline(self) -> None:
        plan = self.plan
        broker_due, redis_due = plan.broker_at, plan.redis_at
        next_kill = self._random.uniform(*plan.kill_interval)
        while not self._stop.is_set():
            self._revive()
            now = self._elapsed()
            if not self._kills_stopped.is_set():
                if broker_due is not None and now >= broker_due:
                    broker_due = None
                    outage = self.stack.broker_outage(plan.broker_down)
                    self._record(FaultEvent("broker", "kafka", now, outage.down_seconds))
                elif redis_due is not None and now >= redis_due:
                    redis_due = None
                    outage = self.stack.redis_outage(plan.redis_down)
                    self._record(FaultEvent("redis", "redis", now, outage.down_seconds))
                elif now >= next_kill and (plan.max_kills is None or self.count("kill") < plan.max_kills):
                    self._kill_one(now)
                    next_kill = self._elapsed() + self._random.uniform(*plan.kill_interval)
            self._stop.wait(0.5)

    def _kill_one(self, now: float) -> None:
        """SIGKILL a random ready replica (any running one if none is ready) and start it again at once."""
        running = [r for r in self.harness.replicas.values() if r.running]
        ready = [r for r in running if r.ready()]
        choices = ready or running
        if not choices:
            return
        victim = self._random.choice(sorted(choices, key=lambda r: r.name))
        self.harness.stop(victim.name, kill=True)
        self.harness.start(victim.name, wait=0)
        self._record(FaultEvent("kill", victim.name, now))

    def _revive(self) -> None:
        """Start again any replica that exited without being killed here."""
        for replica in list(self.harness.replicas.values()):
            if not replica.running:
                code = replica.process.returncode if replica.process is not None else None
                self._record(FaultEvent("unplanned_exit", f"{replica.name} (exit {code})", self._elapsed()))
                self.harness.start(replica.name, wait=0)

    def _record(self, event: FaultEvent) -> None:
        self.events.append(event)
        extra = f" ({event.seconds:.1f} s down)" if event.seconds else ""
        self.report(f"[chaos {event.at:7.1f} s] {event.kind} {event.target}{extra}")

    def _elapsed(self) -> float:
        return time.monotonic() - self._started
