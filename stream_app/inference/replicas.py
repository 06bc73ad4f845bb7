"""Model replicas: N separately loaded copies of one model that the load balancer chooses among.

Replicas share nothing but the model files. On CPU each is a ``WhisperModel`` with its own
CTranslate2 thread pool (``parallel.intra_threads`` threads, or the cores this process may use
divided among the replicas when that is 0), so two replicas decode two windows at the same time
instead of splitting one window's matrix products. On CUDA replica ``i`` runs on device
``(optimization.device_index + i) % visible devices``: one per device index. ``parallel.max_workers``
is the number of replicas.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import ctranslate2

from stream_app.config import Settings, expand_path
from stream_app.inference.models import resolve_model
from stream_app.inference.native_memory import release_free_memory
from stream_app.inference.registry import ModelKey, ModelRegistry, build_transcriber, estimate_model_bytes
from stream_app.inference.transcriber import WhisperTranscriber


@dataclass(frozen=True)
class ReplicaPlan:
    """Where one replica runs: its CUDA device (None on CPU) and its CTranslate2 intra threads."""

    device_index: int | None
    cpu_threads: int


@dataclass(frozen=True)
class ModelReplicas:
    """The loaded replicas of one model key, in replica order."""

    key: ModelKey
    transcribers: tuple[WhisperTranscriber, ...]
    plans: tuple[ReplicaPlan, ...]

    @property
    def gpu_indexes(self) -> list[int | None]:
        """Each replica's CUDA device (None on CPU), for the pool's GPU memory scoring."""
        return [plan.device_index for plan in self.plans]

    def close(self) -> None:
        """Free every replica's native memory."""
        for transcriber in self.transcribers:
            transcriber.close()


def available_cores() -> int:
    """CPU cores this process may run on (its affinity, e.g. under ``taskset``), at least one."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def plan_replicas(
    count: int, device: str, *, intra_threads: int, device_index: int = 0, cores: int = 0, gpus: int = 0
) -> list[ReplicaPlan]:
    """Lay ``count`` replicas out on the device.

    Args:
        count: Number of replicas (at least one).
        device: ``cpu`` or ``cuda``.
        intra_threads: CTranslate2 threads per replica; 0 shares ``cores`` evenly (at least one each).
        device_index: The first CUDA device.
        cores: CPU cores to share (0: ask the operating system).
        gpus: Visible CUDA devices (0: ask CTranslate2).
    """
    if count < 1:
        raise ValueError(f"a model needs at least one replica, got {count}")
    if device == "cuda":
        visible = gpus or max(1, ctranslate2.get_cuda_device_count())
        return [ReplicaPlan((device_index + i) % visible, intra_threads) for i in range(count)]
    threads = intra_threads or max(1, (cores or available_cores()) // count)
    return [ReplicaPlan(None, threads) for _ in range(count)]


def build_replicas(settings: Settings, key: ModelKey) -> ModelReplicas:
    """Load ``parallel.max_workers`` replicas of ``key`` as the configuration lays them out."""
    plans = plan_replicas(
        settings.parallel.max_workers,
        key.device,
        intra_threads=settings.parallel.intra_threads,
        device_index=settings.optimization.device_index,
        cores=settings.parallel.cpu_cores,
    )
    loaded: list[WhisperTranscriber] = []
    try:
        for plan in plans:
            loaded.append(
                build_transcriber(settings, key, device_index=plan.device_index, cpu_threads=plan.cpu_threads)
            )
    except BaseException:
        for transcriber in loaded:
            transcriber.close()
        raise
    return ModelReplicas(key, tuple(loaded), tuple(plans))


def replicas_registry(
    settings: Settings, *, give_back: Callable[[], object] | None = release_free_memory
) -> ModelRegistry[ModelReplicas]:
    """Build the registry the engine serves from: every loaded model key holds its replicas, budgeted together.

    ``give_back`` runs after a model is closed (default: memory back to the system; None for the bench's
    baseline).
    """
    cache_dir = expand_path(settings.optimization.model_cache_dir)
    count = settings.parallel.max_workers

    def estimate(key: ModelKey) -> int:
        return count * estimate_model_bytes(resolve_model(key.model, cache_dir), key.precision)

    return ModelRegistry(
        settings.optimization.memory_budget,
        lambda key: build_replicas(settings, key),
        estimate,
        close=ModelReplicas.close,
        give_back=give_back,
    )
