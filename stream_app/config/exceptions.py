"""Errors raised while loading or validating the configuration."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid; the message names the key and the value."""

    def __init__(self, key: str, value: object, reason: str) -> None:
        self.key = key
        self.value = value
        self.reason = reason
        super().__init__(f"configuration key '{key}' has invalid value {value!r}: {reason}")
