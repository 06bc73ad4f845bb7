"""The cache's metrics: look-up buckets fine enough that a p95 read from them says what Redis and disk take."""

from __future__ import annotations

import itertools
import math

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from stream_app.bench.scrape import bucket_quantile, scrape
from stream_app.cache.metrics import LOOKUP_BUCKETS


def test_buckets_resolve_a_tenth_of_a_millisecond_to_ten() -> None:
    inside = [b for b in LOOKUP_BUCKETS if 0.0001 <= b <= 0.01]
    assert inside[0] == 0.0001 and inside[-1] == 0.01
    steps = [high / low for low, high in itertools.pairwise(inside)]
    assert max(steps) <= 1.5 + 1e-9, steps


def test_buckets_keep_prometheus_rules() -> None:
    assert list(LOOKUP_BUCKETS) == sorted(set(LOOKUP_BUCKETS))
    assert LOOKUP_BUCKETS[-1] == 60.0  # latency buckets reach a minute (seconds: the base unit)


@pytest.mark.parametrize("true_p95_ms", [0.18, 0.45, 2.2, 3.4, 6.8])
def test_a_p95_read_from_the_buckets_is_within_a_step_of_the_truth(true_p95_ms: float) -> None:
    registry = CollectorRegistry()
    histogram = Histogram(
        "stream_app_cache_lookup_seconds", "look-ups", ["tier"], buckets=LOOKUP_BUCKETS, registry=registry
    )
    # 94 fast look-ups at a fifth of the p95 and 6 at it: the p95 lands among the slow ones
    for _ in range(94):
        histogram.labels("redis").observe(true_p95_ms / 5000)
    for _ in range(6):
        histogram.labels("redis").observe(true_p95_ms / 1000)
    read = bucket_quantile(scrape(generate_latest(registry).decode()), "redis", 0.95) * 1000
    assert not math.isnan(read)
    assert true_p95_ms / 1.5 <= read <= true_p95_ms * 1.5, read
