"""`streaming.language` and `optimization.model` are checked at start-up, naming the values allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
from faster_whisper.tokenizer import _LANGUAGE_CODES

from stream_app.cli.main import main
from stream_app.config import ConfigError, load_settings
from stream_app.config.languages import WHISPER_LANGUAGES, spoken_language


def test_the_language_list_is_whispers() -> None:
    assert set(WHISPER_LANGUAGES) == set(_LANGUAGE_CODES)


def test_an_unknown_language_is_refused_with_the_allowed_values() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"STREAM_APP_STREAMING__LANGUAGE": "xx"})
    assert caught.value.key == "streaming.language"
    assert "'auto'" in caught.value.reason and " de," in caught.value.reason


@pytest.mark.parametrize("value", ["auto", "", "AUTO"])
def test_auto_and_empty_mean_detection_on_a_multilingual_model(value: str) -> None:
    settings = load_settings(env={"STREAM_APP_STREAMING__LANGUAGE": value, "STREAM_APP_OPTIMIZATION__MODEL": "base"})
    assert settings.streaming.language == "auto"
    assert spoken_language(settings.streaming.language) is None


@pytest.mark.parametrize("value", ["auto", "de"])
def test_an_english_only_model_serves_english_only(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"STREAM_APP_STREAMING__LANGUAGE": value})
    assert "tiny.en is English-only" in caught.value.reason


def test_base_takes_any_whisper_language() -> None:
    env = {"STREAM_APP_STREAMING__LANGUAGE": "De", "STREAM_APP_OPTIMIZATION__MODEL": "base"}
    assert load_settings(env=env).streaming.language == "de"


def test_a_model_the_registry_does_not_know_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"STREAM_APP_OPTIMIZATION__MODEL": "small"})
    assert caught.value.key == "optimization.model"
    assert "tiny.en, base" in caught.value.reason


def test_a_model_folder_path_is_taken_when_it_holds_a_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model\.bin does not exist"):
        load_settings(env={"STREAM_APP_OPTIMIZATION__MODEL": str(tmp_path)})
    (tmp_path / "model.bin").write_bytes(b"weights")
    # a folder's languages are not known before loading it: any language passes here
    env = {"STREAM_APP_OPTIMIZATION__MODEL": str(tmp_path), "STREAM_APP_STREAMING__LANGUAGE": "fr"}
    assert load_settings(env=env).optimization.model == str(tmp_path)


def test_config_show_refuses_an_unknown_model(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAM_APP_OPTIMIZATION__MODEL", "small")
    assert main(["config", "show"]) == 2
    assert "optimization.model" in capsys.readouterr().err


def test_a_single_underscore_override_is_reported_with_the_right_spelling() -> None:
    with pytest.raises(ConfigError, match="did you mean STREAM_APP_KAFKA__BOOTSTRAP_SERVERS"):
        load_settings(env={"STREAM_APP_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9999"})


def test_other_single_underscore_names_are_not_settings() -> None:
    # Kubernetes injects these for a Service named stream-app-worker: they must not stop a worker
    env = {"STREAM_APP_WORKER_SERVICE_HOST": "10.0.0.1", "STREAM_APP_WORKER_PORT": "tcp://10.0.0.1:9108"}
    assert load_settings(env=env).worker.data_dir == "./var/worker"
