"""Settings written to TOML load back equal, and harness workers run the harness's settings."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from stream_app.config import Settings, load_settings
from stream_app.testing.service import ServiceHarness
from stream_app.testing.settings_file import settings_to_toml, write_settings

CHANGED = {
    "STREAM_APP_OPTIMIZATION__DEVICE": "cuda",
    "STREAM_APP_OPTIMIZATION__DEFAULT_PRECISION": "float16",
    "STREAM_APP_STREAMING__COMMIT_STEP": "1s",
    "STREAM_APP_STREAMING__UTTERANCE_PAUSE": "600ms",
    "STREAM_APP_CACHING__CACHE_LEVELS": "[]",
    "STREAM_APP_CACHING__L3_REDIS_URL": 'redis://127.0.0.1:6390/0?name="a\\b"',
    "STREAM_APP_PARALLEL__MAX_BATCH": "16",
    "STREAM_APP_METRICS__ENABLED": "false",
}


def _changed() -> Settings:
    return load_settings(env=CHANGED)


@pytest.mark.parametrize("env", [{}, CHANGED], ids=["defaults", "changed"])
def test_written_settings_load_back_equal(tmp_path: Path, env: dict[str, str]) -> None:
    settings = load_settings(env=env)
    path = write_settings(settings, tmp_path / "s.toml")
    assert load_settings(path, env={}) == settings


def test_profile_durations_left_unset_follow_the_profile(tmp_path: Path) -> None:
    settings = load_settings(env={"STREAM_APP_STREAMING__PROFILE": "throughput"})
    text = settings_to_toml(settings)
    keys = {line.split("=")[0].strip() for line in text.splitlines() if "=" in line}
    assert "commit_step" not in keys and "preview_step" not in keys
    loaded = load_settings(write_settings(settings, tmp_path / "s.toml"), env={})
    assert (loaded.commit_step_seconds, loaded.preview_step_seconds) == (0.0, 0.0)


def test_harness_workers_get_the_harness_settings_not_the_parent_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The parent's own variables say something else: the settings given to the harness win.
    monkeypatch.setenv("STREAM_APP_OPTIMIZATION__DEVICE", "cpu")
    monkeypatch.setenv("STREAM_APP_PARALLEL__MAX_BATCH", "2")
    harness = ServiceHarness(_changed(), env={"STREAM_APP_STREAMING__IDLE_TIMEOUT": "5s"})
    try:
        env = harness.worker_env({"STREAM_APP_PARALLEL__MAX_WORKERS": "2"})
        seen = load_settings(env=env)
        assert seen.optimization.device == "cuda"
        assert seen.optimization.default_precision == "float16"
        assert seen.commit_step_seconds == 1.0
        assert seen.caching.cache_levels == ()
        assert seen.parallel.max_batch == 16
        # the run's own topics, group and folders, then the harness env, then the per-start extra
        assert seen.kafka.input_topic == harness.topics["input_topic"]
        assert seen.kafka.group_id == harness.group_id
        assert seen.worker.data_dir == str(harness.workdir / "state")
        assert seen.streaming.idle_timeout == 5.0
        assert seen.parallel.max_workers == 2
    finally:
        shutil.rmtree(harness.workdir)


def test_a_worker_process_started_with_the_harness_env_sees_the_settings() -> None:
    harness = ServiceHarness(_changed())
    try:
        command = [sys.executable, "-m", "stream_app.cli.main", "config", "show", "--json"]
        done = subprocess.run(command, env=harness.worker_env(), capture_output=True, text=True, check=True, timeout=60)
        shown = orjson.loads(done.stdout)
        assert shown["optimization"]["device"] == "cuda"
        assert shown["streaming"]["effective_commit_step_seconds"] == 1.0
        assert shown["kafka"]["output_topic"] == harness.topics["output_topic"]
    finally:
        shutil.rmtree(harness.workdir)
