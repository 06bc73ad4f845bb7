"""Liveness beyond a ticking event loop: work that cannot move on by itself.

Two stalls keep a replica's partitions from progressing while its loop ticks happily: a retry loop
failing on a bug of ours (a state write whose encoding raises fails the same way forever), and a
partition whose oldest unacknowledged record waits far longer than any step takes, while nothing
excuses it (a broker outage is waited out and shown by readiness; a full inference pool pauses the
reader). Both turn ``/healthz`` red with the reason, so the orchestrator restarts the replica and an
operator sees why, instead of a partition silently stuck behind a green probe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from stream_app.metrics.health import Health
from stream_app.worker.retry import error_kind

BUG_RETRIES = 3  # failures in a row on a bug of ours before a retry loop counts as stuck
SHOWN = 3  # stuck loops or partitions named in the liveness reason


@dataclass
class RetryLoops:
    """A `RetryWatch` that turns liveness red while a retry loop keeps failing on a bug of ours."""

    health: Health
    bug_after: int = BUG_RETRIES
    _stuck: dict[object, str] = field(default_factory=dict)

    def failed(self, loop: object, what: str, error: BaseException, attempt: int) -> None:
        """Note one more failure of ``loop``; a bug repeated ``bug_after`` times makes the process not alive."""
        if error_kind(error) == "bug" and attempt >= self.bug_after:
            self._stuck[loop] = f"{what} fails on a bug ({type(error).__name__}: {error}), {attempt} tries"
        else:
            self._stuck.pop(loop, None)
        self._show()

    def ended(self, loop: object) -> None:
        """Forget ``loop``: it succeeded or was cancelled."""
        if self._stuck.pop(loop, None) is not None:
            self._show()

    def _show(self) -> None:
        reasons = list(self._stuck.values())
        more = f" (+{len(reasons) - SHOWN} more)" if len(reasons) > SHOWN else ""
        self.health.set_fault("retry", "; ".join(reasons[:SHOWN]) + more if reasons else None)


def ack_head_fault(waits: Mapping[int, float], *, limit: float, excuse: str | None) -> str | None:
    """Return why the partitions' acknowledgements count as stuck, or None.

    Args:
        waits: per partition, seconds its oldest unacknowledged record has been waiting.
        limit: the longest wait a step can legitimately cause (``worker.ack_stall_timeout``).
        excuse: why waiting is expected now (the broker refuses writes, the pool is full), or None.
    """
    if excuse is not None:
        return None
    stuck = sorted((p, wait) for p, wait in waits.items() if wait > limit)
    if not stuck:
        return None
    named = ", ".join(f"partition {p}: oldest record unacknowledged for {wait:.0f} s" for p, wait in stuck[:SHOWN])
    more = f" (+{len(stuck) - SHOWN} more)" if len(stuck) > SHOWN else ""
    return f"{named}{more} (limit {limit:.0f} s)"
