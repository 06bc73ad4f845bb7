"""Write a `Settings` object back to TOML, so a subprocess runs exactly the configuration it was given.

The worker loads its configuration from a file and the environment; a harness that starts workers
writes the caller's effective settings here and points the worker at the file (``STREAM_APP_CONFIG``).
Durations are written in seconds and sizes in bytes (the units `Settings` holds once loaded), and a
profile-derived duration the caller never set is left out, so the worker derives it from the profile
just as the caller did. ``load_settings(path, env={})`` of the written file equals the object.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from stream_app.config import Settings
from stream_app.config.secrets import Secret

_UNSET_DURATION = -1.0  # how `Settings` marks a profile-derived duration the user did not set


def settings_to_toml(settings: Settings) -> str:
    """Render every section and key of ``settings`` as TOML text."""
    lines: list[str] = []
    for section in dataclasses.fields(settings):
        values = getattr(settings, section.name)
        lines.append(f"[{section.name}]")
        names = {item.name for item in dataclasses.fields(values)}
        for item in dataclasses.fields(values):
            value = getattr(values, item.name)
            if item.metadata.get("unit") == "duration" and value == _UNSET_DURATION:
                continue
            from_file = f"{item.name}_file" in names and bool(getattr(values, f"{item.name}_file"))
            if isinstance(value, Secret) and from_file:
                continue  # the worker reads it from the same file; giving it twice is refused
            lines.append(f"{item.name} = {_toml_value(value, f'{section.name}.{item.name}')}")
        lines.append("")
    return "\n".join(lines)


def write_settings(settings: Settings, path: Path) -> Path:
    """Write ``settings`` to ``path`` as TOML (see `settings_to_toml`), readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)  # it may hold secrets given inline
    path.write_text(settings_to_toml(settings), encoding="utf-8")
    return path


def _toml_value(value: Any, key: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, Secret):
        return _toml_string(value.reveal())
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v, key) for v in value) + "]"
    raise TypeError(f"{key}: cannot write {type(value).__name__} values to TOML")


def _toml_string(text: str) -> str:
    """Quote ``text`` as a TOML basic string: escape the quote, the backslash and every control character."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)
