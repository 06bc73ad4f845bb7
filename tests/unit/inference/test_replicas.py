"""Where model replicas run: CPU threads shared among them, CUDA devices one each."""

from __future__ import annotations

import pytest

from stream_app.inference.replicas import ReplicaPlan, available_cores, plan_replicas


def test_cpu_replicas_share_the_cores_when_threads_are_not_set() -> None:
    assert plan_replicas(1, "cpu", intra_threads=0, cores=2) == [ReplicaPlan(None, 2)]
    assert plan_replicas(2, "cpu", intra_threads=0, cores=2) == [ReplicaPlan(None, 1)] * 2
    assert plan_replicas(3, "cpu", intra_threads=0, cores=8) == [ReplicaPlan(None, 2)] * 3
    assert plan_replicas(4, "cpu", intra_threads=0, cores=2) == [ReplicaPlan(None, 1)] * 4  # never zero


def test_explicit_threads_apply_to_every_replica() -> None:
    assert plan_replicas(2, "cpu", intra_threads=3, cores=2) == [ReplicaPlan(None, 3)] * 2


def test_cuda_replicas_take_one_device_index_each_round_robin() -> None:
    plans = plan_replicas(3, "cuda", intra_threads=0, device_index=1, gpus=2)
    assert [p.device_index for p in plans] == [1, 0, 1]
    assert [p.device_index for p in plan_replicas(2, "cuda", intra_threads=0, gpus=4)] == [0, 1]


def test_a_model_needs_a_replica() -> None:
    with pytest.raises(ValueError, match="at least one replica"):
        plan_replicas(0, "cpu", intra_threads=0)


def test_the_cores_are_the_ones_this_process_may_use() -> None:
    assert available_cores() >= 1
