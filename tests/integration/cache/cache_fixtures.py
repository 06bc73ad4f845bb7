"""Helpers for the cache's integration tests: a real redis-server, settings, transcripts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from stream_app.config.settings import CachingSettings, build_section
from stream_app.inference.types import WindowTranscript, Word
from stream_app.testing.tools import require_binary


def caching(redis_url: str, l2_path: Path, **overrides: Any) -> CachingSettings:
    """Validated caching settings as the configuration loader would build them."""
    raw: dict[str, Any] = {
        "l3_redis_url": redis_url,
        "l2_path": str(l2_path),
        "redis_timeout": "50ms",
        "breaker_failures": 2,
        "breaker_reset": "300ms",
    }
    raw.update(overrides)
    settings: CachingSettings = build_section("caching", raw)
    return settings


def transcript(window_start: float = 0.0, text: str = "ask what you can do") -> WindowTranscript:
    """A small transcript with words at 0.5 s steps from ``window_start``."""
    words = tuple(
        Word(start=window_start + 0.5 * i, end=window_start + 0.5 * i + 0.4, text=f" {w}", probability=0.8)
        for i, w in enumerate(text.split())
    )
    return WindowTranscript(
        words=words,
        text=text,
        avg_logprob=-0.3,
        no_speech_prob=0.02,
        compression_ratio=1.2,
        model="tiny.en",
        precision="int8",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process; ``stop`` and ``start`` keep the port, so clients can reconnect."""

    def __init__(self, workdir: Path) -> None:
        self.binary = require_binary("redis-server")
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--save",
                "",
                "--appendonly",
                "no",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
            ],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open but nothing answers, like a stuck Redis."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2.0)
