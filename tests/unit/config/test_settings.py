from pathlib import Path

import pytest

from stream_app.config import ConfigError, load_settings
from stream_app.config.units import parse_duration, parse_size
from stream_app.worker.profile import live_config_for, merge_policy_for


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stream-app.toml"
    path.write_text(text)
    return path


def test_defaults_are_the_live_profile() -> None:
    settings = load_settings(env={})
    assert settings.streaming.profile == "live"
    assert settings.commit_step_seconds == 1.0
    assert settings.preview_step_seconds == 0.25  # previews by default
    assert (settings.streaming.commit_lookahead, settings.streaming.min_window) == (2.0, 12.0)
    assert (settings.streaming.decode_context, settings.streaming.force_final_words) == (0.0, False)
    assert (settings.streaming.preview_context, settings.streaming.commit_step_growth) == (2.0, 0.0)
    live = live_config_for(settings)
    assert (live.preview_context, live.commit_step_growth) == (32000, 0)  # samples reach the live rule
    assert merge_policy_for(settings).settle_after == settings.streaming.settle_after == 2
    assert settings.optimization.default_precision == "int8"
    assert settings.optimization.device == "cpu"


def test_throughput_profile_makes_words_final_at_pauses_only() -> None:
    settings = load_settings(env={"STREAM_APP_STREAMING__PROFILE": "throughput"})
    assert (settings.commit_step_seconds, settings.preview_step_seconds) == (0.0, 0.0)


def test_keys_of_the_windowed_release_are_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, '[streaming]\nchunk_duration = "20s"\ninterim_step = "1s"\nmin_window = "6s"\n')
    settings = load_settings(path, env={})
    assert settings.streaming.min_window == 6.0
    assert "chunk_duration" in caplog.text and "interim_step" in caplog.text


def test_file_values_with_units(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[streaming]
commit_step = "500ms"
utterance_pause = "300ms"
buffer_size = "5min"
[parallel]
max_workers = 4
load_balancing = "least_loaded"
[optimization]
default_precision = "fp16"
device = "cuda"
[caching]
cache_levels = ["memory", "disk"]
l2_size = "1GB"
ttl = "24h"
""",
    )
    settings = load_settings(path, env={})
    assert settings.commit_step_seconds == 0.5
    assert settings.streaming.utterance_pause == 0.3
    assert settings.streaming.buffer_size == 300.0
    assert settings.parallel.max_workers == 4
    assert settings.optimization.default_precision == "float16"
    assert settings.optimization.device == "cuda"
    assert settings.caching.cache_levels == ("memory", "disk")
    assert settings.caching.l2_size == 1024**3
    assert settings.caching.ttl == 86400.0


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[parallel]\nmax_workers = 4\n")
    settings = load_settings(
        path,
        env={"STREAM_APP_PARALLEL__MAX_WORKERS": "2", "STREAM_APP_KAFKA__BOOTSTRAP_SERVERS": "broker:29092"},
    )
    assert settings.parallel.max_workers == 2
    assert settings.kafka.bootstrap_servers == "broker:29092"


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[kafka]\ninput_topic = "mics"\n')
    assert load_settings(env={"STREAM_APP_CONFIG": str(path)}).kafka.input_topic == "mics"


@pytest.mark.parametrize(
    ("env", "key", "fragment"),
    [
        ({"STREAM_APP_PARALLEL__MAX_WORKERS": "many"}, "parallel.max_workers", "whole number"),
        ({"STREAM_APP_PARALLEL__MAX_WORKERS": "0"}, "parallel.max_workers", "between"),
        ({"STREAM_APP_STREAMING__PROFILE": "fast"}, "streaming.profile", "live"),
        ({"STREAM_APP_STREAMING__COMMIT_STEP": "soon"}, "streaming.commit_step", "duration"),
        ({"STREAM_APP_CACHING__L1_SIZE": "big"}, "caching.l1_size", "size"),
        ({"STREAM_APP_CACHING__CACHE_LEVELS": '["ram"]'}, "caching.cache_levels", "ram"),
        ({"STREAM_APP_OPTIMIZATION__DEFAULT_PRECISION": "int4"}, "optimization.default_precision", "4-bit"),
        ({"STREAM_APP_OPTIMIZATION__DEFAULT_PRECISION": "int3"}, "optimization.default_precision", "choose"),
        ({"STREAM_APP_OPTIMIZATION__DEVICE": "tpu"}, "optimization.device", "cuda"),
        ({"STREAM_APP_METRICS__ENABLED": "perhaps"}, "metrics.enabled", "true or false"),
        ({"STREAM_APP_STREAMING__MAX_WINDOW": "45s"}, "streaming.max_window", "28 s"),
        ({"STREAM_APP_STREAMING__MIN_WINDOW": "25s"}, "streaming.min_window", "max_window"),
        ({"STREAM_APP_STREAMING__SPEECH_TAIL": "3s"}, "streaming.speech_tail", "utterance_pause"),
        ({"STREAM_APP_NOPE__X": "1"}, "STREAM_APP_NOPE__X", "unknown section"),
        ({"STREAM_APP_KAFKA__NO_SUCH_KEY": "1"}, "kafka.no_such_key", "unknown key"),
        ({"STREAM_APP_STREAMING__NO_SPEECH_THRESHOLD": "nan"}, "streaming.no_speech_threshold", "finite"),
        ({"STREAM_APP_STREAMING__LOG_PROB_THRESHOLD": "-inf"}, "streaming.log_prob_threshold", "finite"),
        # checked when the settings load, not once the worker has loaded its model
        (
            {"STREAM_APP_WORKER__SESSION_TIMEOUT": "6s", "STREAM_APP_WORKER__HEARTBEAT_INTERVAL": "3s"},
            "worker.heartbeat_interval",
            "a third",
        ),
        ({"STREAM_APP_WORKER__INJECT_WINDOW_CRASHES": "mic:x"}, "worker.inject_window_crashes", "mic:x"),
    ],
)
def test_bad_values_name_the_key_and_value(env: dict[str, str], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env=env)
    assert info.value.key == key
    assert key in str(info.value)
    assert fragment in str(info.value)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[kafka\n"), env={})
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "absent.toml", env={})


def test_unknown_section_in_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown section"):
        load_settings(write(tmp_path, "[gpu]\nx = 1\n"), env={})


def test_settings_are_immutable() -> None:
    settings = load_settings(env={})
    with pytest.raises(AttributeError):
        settings.kafka.partitions = 8  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30.0), ("2s", 2.0), ("5min", 300.0), ("24h", 86400.0), ("1.5", 1.5), (3, 3.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text, "k") == seconds


@pytest.mark.parametrize(("text", "size"), [("1GB", 1024**3), ("512MB", 512 * 1024**2), ("64KB", 65536), (10, 10)])
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text, "k") == size


def test_example_file_in_the_repository_loads() -> None:
    example = Path(__file__).resolve().parents[3] / "stream-app.example.toml"
    settings = load_settings(example, env={})
    assert settings.kafka.input_topic == "audio.chunks"
