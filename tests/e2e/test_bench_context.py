"""`stream-app bench context` as a user runs it: a table, then one JSON object with the agreed keys."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson


def test_bench_context_prints_its_figures_as_json_last() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_APP_")}
    options = ["--files", "1", "--sentences", "3", "--seeds", "7", "--margins", "1.5,1", "--json"]
    result = subprocess.run(
        [sys.executable, "-m", "stream_app.cli.main", "bench", "context", *options],
        env=clean,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("== context")
    summary = orjson.loads(lines[-1])
    for key in ("cost_ratio", "wer_delta", "fallbacks", "fitted_decode_s", "full_decode_s", "decodes"):
        assert key in summary, key
    assert summary["margin_s"] == 1.5 and summary["bucket_s"] == 1.0 and summary["decodes"] >= 1
    assert summary["model"] == "tiny.en" and summary["precision"] == "int8"
    assert summary["cost_ratio"] > 0 and summary["fitted_decode_s"] > 0 and summary["full_decode_s"] > 0
    assert [row["context"] for row in summary["rows"]] == ["full", "fitted+1.5s/1s", "fitted+1s/1s"]
