"""Load `Settings` from a TOML file and ``STREAM_APP_<SECTION>__<KEY>`` environment variables.

This is the only place that reads the environment: everything else receives a `Settings`.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stream_app.config.exceptions import ConfigError
from stream_app.config.models import check_model_setting
from stream_app.config.secrets import MASK
from stream_app.config.security import check_kafka_security, check_redis_security
from stream_app.config.settings import _SECTION_CLASSES, Settings, build_section
from stream_app.config.worker_rules import check_group_timings

ENV_PREFIX = "STREAM_APP_"
CONFIG_ENV = "STREAM_APP_CONFIG"


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Build the validated configuration: defaults, then the TOML file, then the environment.

    ``path`` defaults to ``$STREAM_APP_CONFIG`` when set; without either, defaults and environment apply.
    """
    env = os.environ if env is None else env
    raw: dict[str, dict[str, Any]] = {name: {} for name in _SECTION_CLASSES}
    chosen = path if path is not None else env.get(CONFIG_ENV)
    if chosen:
        file_path = Path(chosen).expanduser()
        try:
            with file_path.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError("config file", str(file_path), "file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config file", str(file_path), f"not valid TOML: {exc}") from None
        for section, values in data.items():
            if section not in raw:  # values of unknown names are never shown: they may be passwords
                raise ConfigError(section, MASK, f"unknown section; known: {', '.join(raw)}")
            if not isinstance(values, dict):
                raise ConfigError(section, MASK, "expected a [section] table")
            raw[section].update(values)
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        if "__" not in name:
            meant = _single_underscore_setting(name)
            if meant is not None:
                raise ConfigError(
                    name, MASK, f"not read: section and key are joined by two underscores; did you mean {meant}?"
                )
            continue
        section, _, key = name[len(ENV_PREFIX) :].partition("__")
        section, key = section.lower(), key.lower()
        if section not in raw:
            raise ConfigError(name, MASK, f"unknown section '{section}'; known: {', '.join(raw)}")
        raw[section][key] = value if _verbatim(section, key) else _parse_env_value(value)
    settings = Settings(**{name: build_section(name, values) for name, values in raw.items()})
    _check_consistency(settings)
    return settings


def _single_underscore_setting(name: str) -> str | None:
    """Return ``STREAM_APP_<SECTION>__<KEY>`` when ``name`` spells a real setting with one underscore, else None.

    Other ``STREAM_APP_*`` names are left alone: Kubernetes injects ``STREAM_APP_WORKER_SERVICE_HOST``
    and the like for a Service named ``stream-app-worker``.
    """
    rest = name[len(ENV_PREFIX) :].lower()
    for section, cls in _SECTION_CLASSES.items():
        key = rest.removeprefix(f"{section}_")
        if key != rest and key in {f.name for f in dataclasses.fields(cls)}:
            return f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
    return None


def _parse_env_value(value: str) -> Any:
    """Read an environment value as a TOML value when it is one (numbers, booleans, lists), else as text."""
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def _verbatim(section: str, key: str) -> bool:
    """Secrets and URLs are taken from the environment as written: a password ``123`` is text, not a number."""
    field = {f.name: f for f in dataclasses.fields(_SECTION_CLASSES[section])}.get(key)
    return field is not None and bool(field.metadata.get("secret") or field.metadata.get("url"))


def _check_consistency(settings: Settings) -> None:
    """Check the rules that span several keys."""
    check_kafka_security(settings.kafka)
    check_redis_security(settings.caching)
    check_model_setting(settings.optimization.model, settings.streaming.language)
    _check_live_rule(settings)
    _check_worker(settings)


def _check_worker(settings: Settings) -> None:
    """Check the group timings and the fault plans here, not after the model has loaded."""
    from stream_app.worker.faults import parse_window_crashes, parse_window_failures

    worker = settings.worker
    check_group_timings(worker)
    for key, parse in (
        ("inject_window_failures", parse_window_failures),
        ("inject_window_crashes", parse_window_crashes),
    ):
        value = getattr(worker, key)
        try:
            parse(value)
        except ValueError as exc:
            raise ConfigError(f"worker.{key}", value, str(exc)) from None


def _check_live_rule(settings: Settings) -> None:
    """Build the live rule once, so that its own checks name the key that breaks them."""
    from stream_app.streaming.config import LiveConfig
    from stream_app.streaming.exceptions import WindowingConfigError

    s = settings.streaming
    if s.max_window > 28.0:
        raise ConfigError("streaming.max_window", s.max_window, "at most 28 s: Whisper hears 30 s and needs a margin")
    if s.min_window > s.max_window:
        raise ConfigError(
            "streaming.min_window", s.min_window, f"must not exceed streaming.max_window ({s.max_window} s)"
        )
    if s.speech_tail > s.utterance_pause:
        raise ConfigError(
            "streaming.speech_tail", s.speech_tail, f"must fit in streaming.utterance_pause ({s.utterance_pause} s)"
        )
    if s.long_pause < s.utterance_pause:
        raise ConfigError(
            "streaming.long_pause", s.long_pause, f"must be at least streaming.utterance_pause ({s.utterance_pause} s)"
        )
    if not 0.0 < s.silence_threshold <= s.speech_threshold < 1.0:
        raise ConfigError(
            "streaming.silence_threshold",
            s.silence_threshold,
            f"need 0 < silence_threshold <= speech_threshold ({s.speech_threshold}) < 1",
        )
    if s.buffer_size < s.max_window:
        raise ConfigError(
            "streaming.buffer_size", s.buffer_size, "must hold at least one window (streaming.max_window)"
        )
    try:
        from stream_app.worker.profile import live_config_for

        live_config_for(settings)
    except WindowingConfigError as exc:  # a rule the checks above did not name
        raise ConfigError("streaming", LiveConfig.__name__, str(exc)) from None
