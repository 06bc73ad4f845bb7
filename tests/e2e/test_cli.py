"""The console script as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from stream_app.local import LocalStack
from stream_app.testing.wer import word_error_rate

STREAM_APP = [sys.executable, "-m", "stream_app.cli.main"]


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_APP_")}
    return subprocess.run(
        [*STREAM_APP, *args], env={**clean, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )


def test_config_show_reflects_environment_overrides() -> None:
    result = run("config", "show", "--json", env={"STREAM_APP_PARALLEL__MAX_WORKERS": "3"})
    assert result.returncode == 0, result.stderr
    config = orjson.loads(result.stdout)
    assert config["parallel"]["max_workers"] == 3
    assert config["kafka"]["input_topic"] == "audio.chunks"


def test_a_bad_setting_is_a_clear_error() -> None:
    result = run("config", "show", env={"STREAM_APP_STREAMING__PROFILE": "instant"})
    assert result.returncode == 2
    assert "streaming.profile" in result.stderr and "instant" in result.stderr


def test_models_list_shows_the_bundled_models() -> None:
    result = run("models", "list")
    assert result.returncode == 0, result.stderr
    assert "tiny.en" in result.stdout and "base" in result.stdout


def test_demo_prints_the_live_transcript(local_stack: LocalStack, tmp_path: Path, jfk_reference: str) -> None:
    env = {
        "STREAM_APP_WORKER__DATA_DIR": str(tmp_path / "state"),
        "STREAM_APP_CACHING__L2_PATH": str(tmp_path / "l2"),
        "STREAM_APP_METRICS__PORT": "19118",
        "STREAM_APP_WORKER__WEB_PORT": "16088",
    }
    result = run("demo", "--fast", env=env, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    final = [line for line in result.stdout.splitlines() if line.startswith("[demo] final transcript:")]
    assert final, result.stdout
    text = final[0].split(":", 1)[1]
    assert word_error_rate(jfk_reference, text) <= 0.10, text
    assert "<end of stream>" in result.stdout
