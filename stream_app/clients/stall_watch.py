"""When to give up on a producer that holds chunks and acknowledges none while the broker answers.

librdkafka's idempotent producer can stay stuck after a broker restart: the broker answers other
clients, yet this producer's chunks are never sent and fail only at their delivery timeout (seen in
`bench chaos`: one recorder of six delivered nothing for 300 s after the broker's return; cf.
confluentinc/librdkafka#3009). The cure is a fresh producer with the held chunks sent again; the
worker drops a chunk it already has by its sequence number. The rule here decides when, as pure
logic over the clock, so that a genuine outage is not mistaken for a stuck producer:

- a producer is *stalled* once it holds chunks and acknowledged none for ``stall_timeout``;
- a stalled producer is checked at most every ``probe_every`` seconds with a fresh connection;
- it is replaced once the broker has been answering that fresh connection for ``stall_timeout`` and
  it still acknowledged nothing, so a producer that reconnects on its own after an outage (within a
  second or so) is never replaced;
- a replacement that acknowledges nothing either waits twice as long before it is replaced in turn
  (a fault that a fresh producer does not cure is not met with a new producer every few seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field

PROBE_EVERY_S = 5.0


@dataclass
class StallWatch:
    """Tracks one producer's progress; ``check`` says when to probe the broker and when to replace it."""

    stall_timeout: float
    probe_every: float = PROBE_EVERY_S
    _quiet_since: float | None = field(default=None, init=False)  # chunks held, none acknowledged since
    _answering_since: float | None = field(default=None, init=False)  # the broker answered a probe since
    _probed_at: float | None = field(default=None, init=False)
    _replacements: int = field(default=0, init=False)  # replacements since the last acknowledgement

    @property
    def limit(self) -> float:
        """The quiet time that counts as stalled: ``stall_timeout``, doubled by each fruitless replacement."""
        return self.stall_timeout * 2.0 ** min(self._replacements, 6)

    def settled(self, now: float, holding: bool) -> None:
        """Note a chunk acknowledged (or failed); ``holding``: chunks still wait."""
        self._quiet_since = now if holding else None
        self._answering_since = None
        self._probed_at = None
        self._replacements = 0

    def replaced(self, now: float, holding: bool) -> None:
        """Note a fresh producer that now holds the chunks; its quiet time starts now."""
        self._quiet_since = now if holding else None
        self._answering_since = None
        self._probed_at = None
        self._replacements += 1

    def holding(self, now: float) -> None:
        """Note a chunk handed over: the quiet time starts now unless chunks were already waiting."""
        if self._quiet_since is None:
            self._quiet_since = now

    def stalled(self, now: float) -> bool:
        """Whether chunks have waited ``stall_timeout`` without any acknowledgement."""
        return self._quiet_since is not None and now - self._quiet_since >= self.limit

    def probe_due(self, now: float) -> bool:
        """Whether to check now if the broker answers (stalled, and the last check long enough ago)."""
        if not self.stalled(now):
            return False
        return self._probed_at is None or now - self._probed_at >= self.probe_every

    def probed(self, now: float, answering: bool) -> bool:
        """Record a probe's outcome; True when the producer should be replaced now."""
        self._probed_at = now
        if not answering:
            self._answering_since = None
            return False
        if self._answering_since is None:
            self._answering_since = now
        assert self._quiet_since is not None  # probes are only due while stalled
        return now - max(self._quiet_since, self._answering_since) >= self.limit
