"""Prometheus figures of the inference pool: queue, batches, latency, errors, and each replica's load."""

from __future__ import annotations

import threading
import time

import psutil
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from stream_app.inference.balancer import WorkerStats, adaptive_score
from stream_app.metrics.buckets import LATENCY_BUCKETS

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class PoolMetrics:
    """The pool's metric families on one registry; label ``pool`` tells pools apart, ``worker`` replicas."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = registry if registry is not None else REGISTRY
        labels = ("pool", "worker")
        self.queue_length = Gauge(
            "stream_app_pool_queue_length", "Jobs waiting in a replica's queue", labels, registry=reg
        )
        self.in_flight = Gauge(
            "stream_app_pool_in_flight", "Jobs inside a model call on a replica", labels, registry=reg
        )
        self.worker_load = Gauge(
            "stream_app_worker_load",
            "A replica's adaptive score: expected seconds until a new job would finish there",
            labels,
            registry=reg,
        )
        self.worker_ewma = Gauge(
            "stream_app_worker_job_seconds",
            "Recent seconds per job on a replica (EWMA)",
            labels,
            registry=reg,
        )
        self.batch_size = Histogram(
            "stream_app_pool_batch_size", "Jobs per model call", labels, buckets=BATCH_BUCKETS, registry=reg
        )
        self.inference_seconds = Histogram(
            "stream_app_inference_seconds",
            "Seconds one model call took (a whole batch)",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.queue_wait_seconds = Histogram(
            "stream_app_pool_queue_wait_seconds",
            "Seconds a job waited between submission and its model call",
            ("pool",),
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.errors = Counter("stream_app_pool_errors_total", "Jobs that failed in the model", labels, registry=reg)
        self.timeouts = Counter(
            "stream_app_pool_timeouts_total", "Jobs abandoned after the task timeout", ("pool",), registry=reg
        )
        self.rejected = Counter(
            "stream_app_pool_rejected_total",
            "Submissions refused because the queue was full",
            ("pool",),
            registry=reg,
        )

    def export_worker(self, pool: str, stats: WorkerStats) -> None:
        """Publish one replica's snapshot as gauges."""
        worker = str(stats.index)
        self.queue_length.labels(pool, worker).set(stats.queue_length)
        self.in_flight.labels(pool, worker).set(stats.in_flight)
        self.worker_ewma.labels(pool, worker).set(stats.ewma_seconds)
        self.worker_load.labels(pool, worker).set(adaptive_score(stats))


_default: PoolMetrics | None = None
_default_lock = threading.Lock()


def default_metrics() -> PoolMetrics:
    """Return the process-wide metrics on the default registry (families register only once)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = PoolMetrics()
        return _default


class ResourceProbe:
    """Reads host RSS and per-device GPU memory for the adaptive balancer, at most once a second.

    GPU figures come from NVML (``pynvml``, the ``nvidia-ml-py`` package) when it is installed and a
    device index is given; otherwise they read as zero and the balancer ignores GPU memory.
    """

    def __init__(self, memory_budget: int, gpu_budget: int, refresh_seconds: float = 1.0) -> None:
        self._memory_budget = memory_budget
        self._gpu_budget = gpu_budget
        self._refresh = refresh_seconds
        self._lock = threading.Lock()
        self._rss = (0.0, 0)
        self._gpu: dict[int, tuple[float, int]] = {}

    def host_memory(self, max_age: float | None = None) -> tuple[int, int]:
        """Return (resident bytes of this process, the budget; 0 = none), read at most ``max_age`` s ago."""
        if self._memory_budget <= 0:
            return 0, 0
        now = time.monotonic()
        with self._lock:
            stamp, rss = self._rss
            if now - stamp >= (self._refresh if max_age is None else max_age):
                rss = int(psutil.Process().memory_info().rss)
                self._rss = (now, rss)
        return rss, self._memory_budget

    def gpu_memory(self, device_index: int | None) -> tuple[int, int]:
        """Return (used bytes on the device, this replica's budget); zeros off CUDA or without NVML."""
        if device_index is None:
            return 0, 0
        now = time.monotonic()
        with self._lock:
            stamp, used = self._gpu.get(device_index, (-self._refresh, 0))
            if now - stamp >= self._refresh:
                used = _nvml_used(device_index)
                self._gpu[device_index] = (now, used)
        return used, self._gpu_budget if used else 0


def _nvml_used(device_index: int) -> int:
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
        return int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
    except Exception:  # no NVML, no driver, or no such device: GPU memory is simply not scored
        return 0
