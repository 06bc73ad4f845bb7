import math
from importlib import metadata

import orjson
import pytest

from stream_app.bench.report import emit, format_table, percentile, runtime_versions


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 100) == 5.0
    assert math.isnan(percentile([], 50))


def test_table_aligns_columns() -> None:
    text = format_table([{"name": "a", "value": 1.23456}, {"name": "long-name", "value": None}])
    lines = text.splitlines()
    assert lines[0].startswith("name")
    assert "1.235" in text and lines[3].rstrip().endswith("-")


def test_emit_json_is_the_last_line(capsys: pytest.CaptureFixture[str]) -> None:
    emit("demo", [{"x": 1}], {"p95_ms": 12.5, "streams": 1}, as_json=True)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert orjson.loads(last) == {"p95_ms": 12.5, "streams": 1, "runtime": runtime_versions()}


def test_a_report_names_the_runtime_its_figures_came_from(capsys: pytest.CaptureFixture[str]) -> None:
    emit("demo", [{"x": 1}], {"delta": 0.03}, as_json=True)
    report = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert f"ctranslate2 {metadata.version('ctranslate2')}" in report["runtime"]
    assert f"faster-whisper {metadata.version('faster-whisper')}" in report["runtime"]
