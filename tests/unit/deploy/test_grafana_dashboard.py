"""deploy/grafana: the dashboard parses, is laid out, and every query reads metrics the service exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import metric_names
import pytest

DASHBOARDS = sorted((metric_names.REPO / "deploy" / "grafana").glob("*.json"))


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    found = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found += panel.get("panels", [])
    return found


def problems(dashboard: dict[str, Any]) -> list[str]:
    """What is wrong with a dashboard, as readable lines (empty when nothing is)."""
    out = []
    known = metric_names.known_series()
    for key in ("uid", "title", "schemaVersion", "panels", "templating"):
        if key not in dashboard:
            out.append(f"dashboard: no {key}")
    variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
    if variables.get("datasource", {}).get("query") != "prometheus":
        out.append("dashboard: needs a Prometheus datasource variable named datasource")
    for var in variables.values():
        if var.get("type") != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
        if not match:
            out.append(f"variable {var['name']}: query {query!r} is not label_values(selector, label)")
        elif not metric_names.selected_metrics(match[1]) <= known:
            out.append(f"variable {var['name']}: {match[1]} reads unknown metrics")
    ids = [p.get("id") for p in panels(dashboard)]
    if len(set(ids)) != len(ids) or None in ids:
        out.append(f"panel ids must be present and unique: {ids}")
    for panel in panels(dashboard):
        title = f"panel {panel.get('id')} {panel.get('title')!r}"
        if "gridPos" not in panel or not panel.get("title"):
            out.append(f"{title}: no title or gridPos")
        if panel.get("type") == "row":
            continue
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            out.append(f"{title}: datasource is not the ${{datasource}} variable")
        if not panel.get("description"):
            out.append(f"{title}: no description (say what it shows and what to do about it)")
        targets = panel.get("targets", [])
        if not targets:
            out.append(f"{title}: no query")
        for target in targets:
            expr = target.get("expr", "")
            try:
                used = metric_names.selected_metrics(expr)
            except Exception as exc:  # promql_parser raises its own error types, ValueError ours
                out.append(f"{title}: {expr!r} does not parse: {exc}")
                continue
            if not used:
                out.append(f"{title}: {expr!r} reads no metric")
            unknown = used - known
            if unknown:
                out.append(f"{title}: {sorted(unknown)} are exported by nothing")
    return out


@pytest.fixture(scope="module", params=DASHBOARDS, ids=lambda p: p.name)
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    path: Path = request.param
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def test_there_is_a_dashboard() -> None:
    assert [p.name for p in DASHBOARDS] == ["stream-app.json"]


def test_the_dashboard_is_sound(dashboard: dict[str, Any]) -> None:
    assert problems(dashboard) == []


def test_it_shows_what_the_alerts_watch(dashboard: dict[str, Any]) -> None:
    shown = set()
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            shown |= metric_names.selected_metrics(target["expr"])
    for metric in (
        "stream_app_consumer_lag_records",
        "stream_app_consumer_lag_seconds",
        "stream_app_word_emission_lag_seconds_bucket",
        "stream_app_word_final_lag_seconds_bucket",
        "stream_app_dead_letters_total",
        "stream_app_window_errors_total",
        "stream_app_cache_breaker_state",
        "stream_app_broker_available",
        "up",
    ):
        assert metric in shown, metric


def test_an_unknown_metric_in_a_panel_is_reported(dashboard: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(dashboard))
    target = next(t for p in panels(broken) for t in p.get("targets", []) if "stream_app_" in t["expr"])
    target["expr"] = target["expr"].replace("stream_app_", "stream_ap_", 1)
    assert any("exported by nothing" in line for line in problems(broken))


def test_a_panel_without_query_or_datasource_is_reported(dashboard: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(dashboard))
    panel = next(p for p in panels(broken) if p.get("targets"))
    panel["targets"] = []
    panel["datasource"] = {"type": "prometheus", "uid": "prod-prom"}
    found = problems(broken)
    assert any("no query" in line for line in found)
    assert any("datasource is not" in line for line in found)


def test_an_expression_that_does_not_parse_is_reported(dashboard: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(dashboard))
    target = next(p for p in panels(broken) if p.get("targets"))["targets"][0]
    target["expr"] = "sum(rate(stream_app_windows_total[5m])"
    assert any("does not parse" in line for line in problems(broken))
