"""Histogram buckets shared by every latency metric, so dashboards can compare them bucket for bucket."""

from __future__ import annotations

# From 10 ms to 60 s: a healthy window sits well under a second, a stalled one shows up at the top.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)
