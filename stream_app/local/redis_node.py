"""Debian's ``redis-server`` as a detached local process: no persistence, loopback only."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from stream_app.local.endpoints import StackLayout
from stream_app.local.exceptions import LocalStackError
from stream_app.local.process import running_pid, start_detached, stop_process
from stream_app.local.service import ServiceState, wait_until_answering

log = logging.getLogger(__name__)

MARKER = "redis-server"


@dataclass(frozen=True)
class RedisSecurity:
    """A TLS Redis with passwords: its configuration file and how a probe logs in."""

    config: str  # the text of redis.conf (TLS port, users)
    client: Mapping[str, Any] = field(default_factory=dict)  # redis.Redis keyword arguments of the probe


class RedisNode:
    """The local Redis that the transcription cache's shared tier (L3) talks to."""

    name = "redis"

    def __init__(self, layout: StackLayout, security: RedisSecurity | None = None) -> None:
        self._layout = layout
        self._security = security

    def answering(self) -> bool:
        """Return whether something at the Redis endpoint answers PING."""
        endpoint = self._layout.redis
        client = redis.Redis(
            host=endpoint.host,
            port=endpoint.port,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
            retry=Retry(NoBackoff(), 0),
            **(self._security.client if self._security else {}),
        )
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    def pid(self) -> int | None:
        """Return the pid of the Redis this stack started, when it runs."""
        return running_pid(self._layout.redis_pid, MARKER)

    def start(self, timeout: float) -> bool:
        """Start Redis unless it runs already, then wait until it answers PING.

        Returns:
            True when this call started Redis (False: it was running, or another one answers there).

        Raises:
            LocalStackError: when ``redis-server`` is missing or does not answer in time.
        """
        layout = self._layout
        pid = self.pid()
        if pid is None and self.answering():
            log.warning("a Redis not started by stream-app already answers at %s; using it", layout.redis)
            return False
        started = pid is None
        if pid is None:
            server = shutil.which("redis-server")
            if server is None:
                raise LocalStackError("redis-server is not installed (apt install redis-server)")
            layout.redis_dir.mkdir(parents=True, exist_ok=True)
            argv = [
                server, "--bind", layout.redis.host, "--port", str(layout.redis.port),
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "",
                "--dir", str(layout.redis_dir),
            ]  # fmt: skip
            if self._security is not None:  # passwords go in an owner-only file, never on the command line
                fd = os.open(layout.redis_config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(self._security.config)
                argv = [server, str(layout.redis_config)]
            pid = start_detached(argv, pid_file=layout.redis_pid, log_file=layout.redis_log, cwd=layout.redis_dir)
            log.info("started Redis (pid %d) at %s", pid, layout.redis)
        wait_until_answering("Redis", self.answering, pid=pid, log_file=layout.redis_log, timeout=timeout)
        return started

    def stop(self) -> bool:
        """Stop the Redis this stack started; returns whether one was running."""
        return stop_process(self._layout.redis_pid, MARKER, grace=10.0)

    def state(self) -> ServiceState:
        """Report what runs at the Redis endpoint."""
        layout = self._layout
        return ServiceState(self.name, layout.redis, self.pid(), self.answering(), layout.redis_log)
