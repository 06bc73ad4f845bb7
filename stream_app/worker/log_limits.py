"""Keep an outage readable: the Kafka client's repeated connection errors are logged once every few seconds.

While a broker restarts, aiokafka, faust and mode log every failed connection, heartbeat and
metadata request, thousands of lines in twenty seconds. This filter lets the first record of each
kind through, drops repeats of it for ``every`` seconds, and says how many it dropped on the next
one let through. Only the libraries' records are limited; stream_app's own messages are already
rate-limited where they recur (`stream_app.worker.retry.RateLimitedLog`). faust's table recovery is
never limited: it logs once per rebalance, and its tables of start offsets and highwaters (active,
then standby, under one message template) are what an operator reads to see where a copy began.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

LIMITED = ("aiokafka", "faust", "mode", "kafka")
UNLIMITED = ("faust.tables.recovery",)


class BurstFilter(logging.Filter):
    """Pass a library's repeated record (same logger, same message template) at most once per ``every`` s."""

    def __init__(self, every: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every = every
        self.clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._dropped: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Return whether to emit the record (it may gain a count of the repeats dropped before it)."""
        if not record.name.startswith(LIMITED) or record.name.startswith(UNLIMITED):
            return True
        if record.levelno >= logging.CRITICAL:
            return True
        key = (record.name, str(record.msg))
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.every:
            self._dropped[key] = self._dropped.get(key, 0) + 1
            return False
        self._last[key] = now
        dropped = self._dropped.pop(key, 0)
        if dropped and last is not None:
            record.msg = f"{record.getMessage()} ({dropped} more like this in the last {now - last:.0f} s)"
            record.args = ()  # not None: mode's formatter makes None an argument, and formatting then fails
        if len(self._last) > 10_000:  # keys are message templates: a handful in practice
            self._last.clear()
        return True


def limit_library_logs(filter_: BurstFilter) -> None:
    """Attach the filter to every handler of the root logger (faust sets them up when the worker starts)."""
    for handler in logging.getLogger().handlers:
        if filter_ not in handler.filters:
            handler.addFilter(filter_)
