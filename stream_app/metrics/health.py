"""Liveness and readiness as the worker knows them, independent of how they are served."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Health:
    """Liveness = the event loop still ticks; readiness = every named check passes.

    The worker's timer calls `beat()`; a loop blocked for longer than ``stall_after`` seconds makes
    the process not alive, so an orchestrator restarts it instead of leaving partitions stuck.
    """

    stall_after: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _last_beat: float = field(default_factory=time.monotonic)
    _ready: dict[str, bool] = field(default_factory=dict)
    _faults: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def beat(self) -> None:
        """Record that the event loop is alive."""
        self._last_beat = self.clock()

    def set_ready(self, check: str, ok: bool) -> None:
        """Mark one readiness condition (``model``, ``kafka``, ...) as met or not."""
        with self._lock:
            self._ready[check] = ok

    def set_fault(self, check: str, fault: str | None) -> None:
        """Mark the process not alive for ``check`` (e.g. a model call hung) with why, or clear it (None)."""
        with self._lock:
            if fault is None:
                self._faults.pop(check, None)
            else:
                self._faults[check] = fault

    def alive(self) -> tuple[bool, str]:
        """Return whether the loop ticked recently and nothing reported a fault, with a reason."""
        age = self.clock() - self._last_beat
        if age > self.stall_after:
            return False, f"event loop silent for {age:.1f} s"
        with self._lock:
            faults = sorted(self._faults.items())
        if faults:
            return False, "; ".join(f"{name}: {fault}" for name, fault in faults)
        return True, f"last beat {age:.1f} s ago"

    def ready(self) -> tuple[bool, str]:
        """Return whether every readiness check passes, naming those that do not."""
        with self._lock:
            failing = sorted(name for name, ok in self._ready.items() if not ok)
            known = bool(self._ready)
        alive, reason = self.alive()
        if not alive:
            return False, reason
        if not known:
            return False, "starting"
        if failing:
            return False, "not ready: " + ", ".join(failing)
        return True, "ready"
