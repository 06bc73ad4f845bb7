"""Which metrics the service exports, and which metrics a PromQL expression reads (for rules and dashboards)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import promql_parser

REPO = Path(__file__).resolve().parents[3]

# Metrics other engineers are adding to the worker now (issue 11 / issues 9 and 10), with their types:
# rules and panels may use them before they land. Once stream_app defines one, its type must agree.
PENDING_METRICS: dict[str, str] = {}
# Metrics that are not the service's: Prometheus's own and kube-state-metrics'.
EXTERNAL_METRICS = {"up", "kube_pod_status_ready"}

_DEFINITION = re.compile(r"\b(Counter|Gauge|Histogram|Summary)\(\s*\"(stream_app_[a-z0-9_]+)\"")
_SUFFIXES = {"Histogram": ("_bucket", "_sum", "_count"), "Summary": ("_sum", "_count")}


def defined_metrics(package: Path = REPO / "stream_app") -> dict[str, str]:
    """Every ``stream_app_*`` metric a prometheus_client constructor in the package defines, with its type."""
    found: dict[str, str] = {}
    for source in sorted(package.rglob("*.py")):
        for kind, name in _DEFINITION.findall(source.read_text()):
            found[name] = kind
    return found


def exported_series(metrics: dict[str, str]) -> set[str]:
    """The series names those metrics show on /metrics (a histogram shows _bucket, _sum and _count)."""
    names = set()
    for name, kind in metrics.items():
        names.add(name)
        names.update(name + suffix for suffix in _SUFFIXES.get(kind, ()))
    return names


def known_series() -> set[str]:
    """Series a rule or panel may read: the package's, the pending ones, and the external ones."""
    return exported_series({**PENDING_METRICS, **defined_metrics()}) | EXTERNAL_METRICS


def selected_metrics(expr: str) -> set[str]:
    """The metric names an expression selects (Grafana's $variables replaced so it parses)."""
    expr = re.sub(r"\$__(rate_)?interval|\$__range", "5m", expr)
    expr = re.sub(r"\$\{?\w+\}?", "x", expr)
    names: set[str] = set()
    _walk(promql_parser.parse(expr), names)
    return names


def _walk(node: Any, names: set[str]) -> None:
    kind = type(node).__name__
    if kind == "VectorSelector":
        name = node.name or next((m.value for m in node.matchers.matchers if m.name == "__name__"), None)
        if name is None:
            raise ValueError(f"selector without a metric name: {node}")
        names.add(name)
        return
    for attr in ("lhs", "rhs", "expr", "param", "vector_selector"):
        child = getattr(node, attr, None)
        if child is not None:
            _walk(child, names)
    for child in getattr(node, "args", None) or ():
        _walk(child, names)
