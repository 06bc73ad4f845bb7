"""Parse the human units the configuration file uses: durations ("500ms", "30s") and sizes ("1GB")."""

from __future__ import annotations

import re

from stream_app.config.exceptions import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d)?\s*$", re.IGNORECASE)
_DURATION_SCALE = {"ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib|tb|tib)?\s*$", re.IGNORECASE)
# Sizes are binary (1KB = 1024 bytes): they bound memory and disk, where that is the unit people mean.
_SIZE_SCALE = {
    "b": 1,
    "kb": 1024,
    "kib": 1024,
    "mb": 1024**2,
    "mib": 1024**2,
    "gb": 1024**3,
    "gib": 1024**3,
    "tb": 1024**4,
    "tib": 1024**4,
}


def parse_duration(value: object, key: str) -> float:
    """Return seconds for a duration such as ``"30s"``, ``"500ms"``, ``"5min"`` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ConfigError(key, value, "expected a duration such as '500ms', '30s' or '5min'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ConfigError(key, value, "expected a duration such as '500ms', '30s' or '5min'")
        unit = (match.group(2) or "s").lower()
        seconds = float(match.group(1)) * _DURATION_SCALE[unit]
    if seconds < 0:
        raise ConfigError(key, value, "a duration cannot be negative")
    return seconds


def parse_size(value: object, key: str) -> int:
    """Return bytes for a size such as ``"1GB"``, ``"512MB"`` or a bare number of bytes (binary units)."""
    if isinstance(value, bool):
        raise ConfigError(key, value, "expected a size such as '64MB' or '1GB'")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ConfigError(key, value, "expected a size such as '64MB' or '1GB'")
        unit = (match.group(2) or "b").lower()
        size = int(float(match.group(1)) * _SIZE_SCALE[unit])
    if size < 0:
        raise ConfigError(key, value, "a size cannot be negative")
    return size
