"""Watch a worker process from outside: memory (process and children), /healthz, and its metrics."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import psutil

from stream_app.testing.service import Replica


def metric_total(exposition: str, name: str) -> float | None:
    """Sum every sample of metric ``name`` in Prometheus text (all label sets); None when it has none."""
    total, found = 0.0, False
    for line in exposition.splitlines():
        if line.startswith(name) and len(line) > len(name) and line[len(name)] in " {":
            try:
                total += float(line.rsplit(" ", 1)[1])
            except ValueError:
                continue
            found = True
    return total if found else None


def metric_by_label(exposition: str, name: str, label: str) -> dict[str, float]:
    """Return each sample of metric ``name`` keyed by the value of its ``label`` (``{cause="idle"}``)."""
    out: dict[str, float] = {}
    prefix = f"{name}{{"
    for line in exposition.splitlines():
        if not line.startswith(prefix):
            continue
        labels, _, value = line[len(prefix) :].partition("} ")
        for pair in labels.split(","):
            key, _, raw = pair.partition("=")
            if key.strip() == label:
                try:
                    out[raw.strip().strip('"')] = out.get(raw.strip().strip('"'), 0.0) + float(value)
                except ValueError:
                    continue
    return out


def process_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its children, MB (10^6 bytes); 0 when it is gone."""
    try:
        process = psutil.Process(pid)
        total = int(process.memory_info().rss)
        children = process.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0
    for child in children:
        try:
            total += int(child.memory_info().rss)
        except psutil.NoSuchProcess:
            continue
    return total / 1e6


def healthz_ok(replica: Replica, timeout: float = 2.0) -> bool:
    """Whether the replica's /healthz answers 200 within ``timeout`` seconds."""
    try:
        url = f"http://127.0.0.1:{replica.metrics_port}/healthz"
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@dataclass
class WorkerProbe:
    """Sample a replica's RSS every ``rss_every`` s and poll its /healthz every ``health_every`` s, in a thread."""

    replica: Replica
    rss_every: float = 0.5
    health_every: float = 1.0
    rss: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, MB)
    health_checks: int = 0
    health_failures: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-probe", daemon=True)
        self._started = 0.0

    def start(self) -> None:
        """Start sampling."""
        self._started = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and wait for the thread."""
        self._stop.set()
        self._thread.join()

    @property
    def peak_rss_mb(self) -> float:
        """The largest RSS sampled."""
        return max((mb for _, mb in self.rss), default=0.0)

    def _run(self) -> None:
        next_health = 0.0
        while not self._stop.is_set():
            now = time.monotonic() - self._started
            process = self.replica.process
            if process is not None and process.poll() is None:
                self.rss.append((now, process_rss_mb(process.pid)))
            if now >= next_health:
                next_health = now + self.health_every
                self.health_checks += 1
                if not healthz_ok(self.replica):
                    self.health_failures += 1
            self._stop.wait(self.rss_every)
