"""Reading a worker's ``/metrics``: samples by name and labels, their increase over a pass, cache figures.

The benchmarks and the integration tests read the service the way Prometheus does, from the text
exposition of a running worker; the cache's figures come from its counters and look-up histogram.
"""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families

TIERS = ("memory", "disk", "redis")
PREVIEW = "preview"

# A metric sample: (sample name, sorted label pairs) -> value.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(text: str) -> Samples:
    """Parse a Prometheus exposition into samples keyed by name and labels."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return out


def delta(after: Samples, before: Samples) -> Samples:
    """Counter and histogram increase between two scrapes of one process."""
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def sample(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when the process has not created it yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def tier_hits(samples: Samples) -> dict[str, tuple[float, float]]:
    """Hits and misses per tier."""
    return {
        tier: (
            sample(samples, "stream_app_cache_hits_total", tier=tier),
            sample(samples, "stream_app_cache_misses_total", tier=tier),
        )
        for tier in TIERS
    }


def tier_errors(samples: Samples, tier: str) -> float:
    """Failed operations of one tier (timeouts, refused connections, an open breaker), all kinds together."""
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "stream_app_cache_errors_total" and dict(labels).get("tier") == tier
    )


def decode_lookups(samples: Samples, *, previews: bool) -> tuple[float, float]:
    """Hits and look-ups of previews (``previews``) or of every other decode kind (ticks, cuts, files)."""
    hits = lookups = 0.0
    for (name, labels), value in samples.items():
        label_map = dict(labels)
        if name != "stream_app_cache_decode_lookups_total" or (label_map.get("kind") == PREVIEW) != previews:
            continue
        lookups += value
        hits += value if label_map.get("result") == "hit" else 0.0
    return hits, lookups


def decode_hit_rate(samples: Samples, *, previews: bool | None = None) -> float:
    """Return decodes answered by any tier over decodes looked up: previews, the others, or all (None).

    NaN when no such decode was looked up.
    """
    kinds = (False, True) if previews is None else (previews,)
    counts = [decode_lookups(samples, previews=kind) for kind in kinds]
    hits, lookups = sum(h for h, _ in counts), sum(n for _, n in counts)
    return hits / lookups if lookups else math.nan


def bypassed(samples: Samples, kind: str = PREVIEW) -> float:
    """Count the decodes of ``kind`` sent to the model without a look-up (previews)."""
    return sample(samples, "stream_app_cache_bypassed_total", kind=kind)


def bucket_quantile(samples: Samples, tier: str, q: float) -> float:
    """Quantile ``q`` (0-1) of one tier's look-up seconds from histogram buckets; NaN without look-ups."""
    buckets: list[tuple[float, float]] = []
    for (name, labels), value in samples.items():
        label_map = dict(labels)
        if name == "stream_app_cache_lookup_seconds_bucket" and label_map.get("tier") == tier:
            buckets.append((float(label_map["le"]), value))
    buckets.sort()
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # beyond the last finite bucket: say its bound, as Prometheus does
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 1.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound
