"""Rules between ``[worker]`` keys that the broker or faust would otherwise refuse only once the worker runs."""

from __future__ import annotations

from stream_app.config.exceptions import ConfigError
from stream_app.config.settings import WorkerSettings


def check_group_timings(worker: WorkerSettings) -> None:
    """Refuse group timings that would evict a healthy replica or cut a hand-over short.

    Raises:
        ConfigError: naming the key whose value breaks the rule.
    """
    if worker.heartbeat_interval * 3 > worker.session_timeout:
        raise ConfigError(
            "worker.heartbeat_interval",
            worker.heartbeat_interval,
            f"must be at most a third of worker.session_timeout ({worker.session_timeout:g} s), "
            "or one late heartbeat evicts the replica",
        )
    if worker.rebalance_timeout < worker.drain_timeout:
        raise ConfigError(
            "worker.rebalance_timeout",
            worker.rebalance_timeout,
            f"must be at least worker.drain_timeout ({worker.drain_timeout:g} s)",
        )
