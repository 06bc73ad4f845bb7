"""The disruptions of `bench failover`, one at a time, each noted with the wall time it hit.

Unlike `stream_app.testing.faults` (random kills on a timer), these are the named operations an operator
meets: a crash and restart, a graceful stop (a rolling upgrade), scaling out and in, and a broker
outage. Each returns the `Disruption` records the resume times are computed from
(`stream_app.bench.resume`); their ``until`` is filled in by the caller once the next one is known.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from stream_app.bench.resume import Disruption
from stream_app.testing.private_stack import PrivateStack
from stream_app.testing.service import ServiceHarness

LIVE_STREAMS = re.compile(r"^stream_app_live_streams (\S+)$", re.MULTILINE)
OWNED = re.compile(r'^stream_app_partition_owned\{partition="(\d+)"\} 1\.0$', re.MULTILINE)
READY_TIMEOUT = 300.0
STOP_LOG_LINES = 2000  # a stop's part of a replica log (its signal to its exit) is a few dozen lines
LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] \[\d+\] \[\w+\] (.*)$")
SIGNAL = "Signal received: 15"
LEFT = ("left the consumer group in", "LeaveGroup request succeeded")  # the worker's line; aiokafka's (before ad8fc0a)


def signal_to_leave(log: str) -> float | None:
    """Return the seconds from a replica's last SIGTERM to its LeaveGroup answer, from its log.

    That is how long the rest of the group waited before it could move the partitions. None when the
    log shows no SIGTERM, or no answered LeaveGroup after it (the replica left by its session timeout).
    """
    stops = stop_leave_times(log)
    return stops[-1] if stops else None


def stop_leave_times(log: str) -> list[float | None]:
    """Return, for each SIGTERM in a replica's log (it spans restarts), the seconds to its LeaveGroup answer."""
    stops: list[tuple[datetime, datetime | None]] = []
    for line in log.splitlines():
        match = LOG_LINE.match(line)
        if match is None:
            continue
        if SIGNAL in match.group(2):
            stops.append((_stamp(match.group(1)), None))
        elif any(left in match.group(2) for left in LEFT) and stops and stops[-1][1] is None:
            stops[-1] = (stops[-1][0], _stamp(match.group(1)))
    return [None if left is None else round((left - signalled).total_seconds(), 3) for signalled, left in stops]


def _stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f")


def live_streams(metrics: str) -> float:
    """Return the ``stream_app_live_streams`` gauge of a replica's exposition (0 when absent)."""
    match = LIVE_STREAMS.search(metrics)
    return float(match.group(1)) if match else 0.0


def owned_partitions(metrics: str) -> set[int]:
    """Return the input partitions a replica reports owning (``stream_app_partition_owned``)."""
    return {int(p) for p in OWNED.findall(metrics)}


@dataclass
class Disruptor:
    """Disrupt a harness's replicas and a private stack's broker; keep what happened in ``events``."""

    harness: ServiceHarness
    stack: PrivateStack
    report: Callable[[str], None] = print
    clock: Callable[[], float] = time.time
    events: list[Disruption] = field(default_factory=list)

    def busiest(self) -> str:
        """Return the running replica holding the most streams."""
        counts = {}
        for name, replica in sorted(self.harness.replicas.items()):
            if replica.running:
                try:
                    counts[name] = live_streams(replica.metrics())
                except OSError:
                    counts[name] = 0.0
        if not counts:
            raise RuntimeError("no replica is running")
        return max(counts, key=lambda name: counts[name])

    def kill_and_restart(self, name: str, *, after: float = 5.0) -> None:
        """SIGKILL ``name`` (a crash), start it again ``after`` seconds later (same name, same state folder)."""
        at = self.clock()
        self.harness.stop(name, kill=True)
        self._note(Disruption("kill", "kill", name, at, at), f"SIGKILL {name}")
        time.sleep(max(0.0, at + after - self.clock()))
        self.harness.start(name, wait=0)
        self.report(f"[failover] {name} restarted")
        self.harness.wait_ready(name, READY_TIMEOUT)

    def terminate(self, name: str, *, phase: str, restart: bool) -> None:
        """SIGTERM ``name`` (a graceful stop: it hands over and leaves); start it again if ``restart``."""
        at = self.clock()
        self.harness.stop(name)
        exited = self.clock() - at
        left = signal_to_leave(self.harness.log_tail(name, STOP_LOG_LINES))
        kind = "terminate" if restart else "remove"
        event = Disruption(phase, kind, name, at, at, left_group_s=left)
        left_text = "never" if left is None else f"{left:.2f} s"
        self._note(event, f"SIGTERM {name} (left the group after {left_text}, exited after {exited:.1f} s)")
        if restart:
            self.harness.start(name, wait=0)
            self.harness.wait_ready(name, READY_TIMEOUT)
            self.report(f"[failover] {name} back and ready")

    def add(self, name: str) -> None:
        """Start a new replica (scale out); it takes partitions once its model is loaded."""
        at = self.clock()
        self.harness.start(name, wait=0)
        self._note(Disruption("scaling", "add", name, at, at, from_event=False), f"started {name}")
        self.harness.wait_ready(name, READY_TIMEOUT)

    def broker_outage(self, seconds: float) -> None:
        """Stop the broker for ``seconds``; the event counts from when it answers again."""
        outage = self.stack.broker_outage(seconds)
        answered = self.clock()
        event = Disruption("broker", "broker", "kafka", answered, answered, every_stream=True)
        self._note(event, f"broker stopped, answering again after {outage.down_seconds:.1f} s")

    def _note(self, event: Disruption, what: str) -> None:
        self.events.append(event)
        self.report(f"[failover] {event.phase}: {what}")


def close_windows(events: list[Disruption], end: float) -> list[Disruption]:
    """Give each event the time of the next one (the last one ``end``) as the end of its window."""
    ends = [e.at for e in events[1:]] + [end] if events else []
    return [replace(e, until=max(e.at, until)) for e, until in zip(events, ends, strict=True)]
