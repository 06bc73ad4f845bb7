"""deploy/prometheus: the alert rules pass `promtool check rules` and their unit tests, and read real metrics.

promtool comes from Debian's `prometheus` package (scripts/setup.sh installs it). Without it these
tests fail and say so: a rule file nobody checked is not a passing test.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import metric_names
import pytest
import yaml

PROMETHEUS = metric_names.REPO / "deploy" / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
RULE_TESTS = PROMETHEUS / "alerts.test.yml"
CONFIG = PROMETHEUS / "prometheus.yml"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: install Debian's `prometheus` package (bash scripts/setup.sh does)")
    return path


def run(promtool: str, *args: str | Path, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=60)


def alerts(path: Path = RULES) -> list[dict[str, Any]]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_the_rules_pass_promtool_check(promtool: str) -> None:
    result = run(promtool, "check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_the_compose_prometheus_config_loads_the_rules(promtool: str) -> None:
    result = run(promtool, "check", "config", CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "alerts.yml" in yaml.safe_load(CONFIG.read_text())["rule_files"]


def test_the_rules_pass_their_unit_tests(promtool: str) -> None:
    result = run(promtool, "test", "rules", RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_silent() -> None:
    cases: dict[str, list[list[Any]]] = {}
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], []).append(case.get("exp_alerts") or [])
    names = [a["alert"] for a in alerts()]
    assert sorted(set(names)) == sorted(names), "an alert name is used twice"
    assert sorted(cases) == sorted(names), "alerts without a test, or tests of alerts that do not exist"
    for name, expectations in cases.items():
        assert any(expectations), f"{name}: no case where it fires"
        assert not all(expectations), f"{name}: no case where it stays silent"


def test_the_issue_asks_for_these_alerts() -> None:
    names = {a["alert"] for a in alerts()}
    assert {
        "StreamAppConsumerLagGrowing",
        "StreamAppDeadLetters",
        "StreamAppWindowErrors",
        "StreamAppCacheBreakerOpen",
        "StreamAppReplicaDown",
        "StreamAppReplicaNotReady",
        "StreamAppWordFinalLagAboveTarget",
    } <= names


def test_every_alert_has_a_severity_and_says_what_to_do() -> None:
    for rule in alerts():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and len(rule["annotations"]["description"]) > 40, rule["alert"]


def test_every_rule_reads_metrics_that_exist() -> None:
    known = metric_names.known_series()
    for rule in alerts():
        used = metric_names.selected_metrics(rule["expr"])
        assert used, rule["alert"]
        assert used <= known, f"{rule['alert']}: {sorted(used - known)} are exported by nothing"


def test_pending_metrics_agree_with_their_definitions_once_they_exist() -> None:
    defined = metric_names.defined_metrics()
    for name, kind in metric_names.PENDING_METRICS.items():
        assert defined.get(name, kind) == kind, f"{name} is a {defined[name]} in stream_app, not a {kind}"


def test_an_unknown_metric_is_caught() -> None:
    used = metric_names.selected_metrics("rate(stream_app_window_error_total[5m]) > 0")
    assert used - metric_names.known_series() == {"stream_app_window_error_total"}


# --- broken copies are refused -------------------------------------------------------------------


def _copy(tmp_path: Path) -> Path:
    for name in ("alerts.yml", "alerts.test.yml"):
        shutil.copy(PROMETHEUS / name, tmp_path / name)
    return tmp_path / "alerts.yml"


def test_a_syntax_error_fails_promtool_check(promtool: str, tmp_path: Path) -> None:
    rules = _copy(tmp_path)
    rules.write_text(rules.read_text().replace("expr: up{job=", "expr: sum(up{job=", 1))
    result = run(promtool, "check", "rules", rules, cwd=tmp_path)
    assert result.returncode != 0
    assert "parse error" in result.stdout + result.stderr


def test_a_changed_threshold_fails_the_unit_tests(promtool: str, tmp_path: Path) -> None:
    rules = _copy(tmp_path)
    text = rules.read_text()
    assert "(stream_app_consumer_lag_seconds) > 300" in text
    rules.write_text(text.replace("(stream_app_consumer_lag_seconds) > 300", "(stream_app_consumer_lag_seconds) > 500"))
    result = run(promtool, "test", "rules", tmp_path / "alerts.test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "StreamAppConsumerLagHigh" in result.stdout + result.stderr


def test_a_renamed_metric_fails_the_unit_tests(promtool: str, tmp_path: Path) -> None:
    rules = _copy(tmp_path)
    rules.write_text(rules.read_text().replace("stream_app_cache_breaker_state", "stream_app_cache_breaker"))
    result = run(promtool, "test", "rules", tmp_path / "alerts.test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "StreamAppCacheBreakerOpen" in result.stdout + result.stderr
