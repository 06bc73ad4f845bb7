from __future__ import annotations

import pytest

from stream_app.inference.balancer import DEFAULT_EWMA_SECONDS, LoadBalancer, WorkerStats, adaptive_score

GB = 1 << 30


def test_round_robin_cycles_regardless_of_load() -> None:
    lb = LoadBalancer("round_robin")
    stats = [WorkerStats(0, queue_length=100), WorkerStats(1), WorkerStats(2)]
    assert [lb.choose(stats) for _ in range(6)] == [0, 1, 2, 0, 1, 2]


def test_least_loaded_counts_queue_and_in_flight() -> None:
    lb = LoadBalancer("least_loaded")
    stats = [
        WorkerStats(0, queue_length=3),
        WorkerStats(1, queue_length=1, in_flight=4),
        WorkerStats(2, 1, 1),
    ]
    assert lb.choose(stats) == 2


def test_least_loaded_spreads_ties() -> None:
    lb = LoadBalancer("least_loaded")
    stats = [WorkerStats(0), WorkerStats(1), WorkerStats(2, queue_length=5)]
    assert [lb.choose(stats) for _ in range(4)] == [0, 1, 0, 1]


def test_adaptive_prefers_the_faster_replica_despite_a_longer_queue() -> None:
    lb = LoadBalancer("adaptive")
    slow = WorkerStats(0, queue_length=1, ewma_seconds=2.0)  # (1+1)*2.0 = 4 s
    fast = WorkerStats(1, queue_length=3, ewma_seconds=0.5)  # (3+1)*0.5 = 2 s
    assert lb.choose([slow, fast]) == 1


def test_adaptive_avoids_a_replica_near_its_gpu_memory_limit() -> None:
    lb = LoadBalancer("adaptive")
    full = WorkerStats(0, ewma_seconds=0.3, gpu_memory_bytes=int(1.1 * GB), gpu_memory_limit_bytes=GB)
    roomy = WorkerStats(1, queue_length=1, ewma_seconds=0.3, gpu_memory_bytes=GB // 4, gpu_memory_limit_bytes=GB)
    assert lb.choose([full, roomy]) == 1


def test_adaptive_counts_host_memory_pressure() -> None:
    calm = WorkerStats(0, ewma_seconds=1.0, rss_bytes=GB // 2, memory_budget_bytes=GB)
    tight = WorkerStats(0, ewma_seconds=1.0, rss_bytes=GB, memory_budget_bytes=GB)
    assert adaptive_score(calm) == pytest.approx(1.0)
    assert adaptive_score(tight) == pytest.approx(2.0)


def test_adaptive_gives_untried_replicas_a_default_cost() -> None:
    assert adaptive_score(WorkerStats(0, queue_length=1)) == pytest.approx(2 * DEFAULT_EWMA_SECONDS)
    lb = LoadBalancer("adaptive")
    busy_known = WorkerStats(0, queue_length=4, ewma_seconds=0.4)  # 2.0 s
    untried = WorkerStats(1)  # 0.5 s
    assert lb.choose([busy_known, untried]) == 1


@pytest.mark.parametrize("strategy", ["round_robin", "least_loaded", "adaptive"])
def test_one_replica_is_always_chosen(strategy: str) -> None:
    lb = LoadBalancer(strategy)  # type: ignore[arg-type]
    assert {lb.choose([WorkerStats(0, queue_length=n)]) for n in range(5)} == {0}


def test_unknown_strategy_and_empty_stats_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown load-balancing strategy"):
        LoadBalancer("random")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        LoadBalancer().choose([])
