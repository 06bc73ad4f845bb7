"""Typed reads of a stored state document's fields: a wrong type is refused, never coerced.

The stream records (`stream_app.worker.records`) and the session state inside them
(`stream_app.worker.session_state`) are JSON documents read back from the changelog; a field of the
wrong type raises ``ValueError``, which their readers turn into `StateCorrupt`.
"""

from __future__ import annotations

from typing import Any


def as_int(value: Any) -> int:
    """Return ``value`` if it is a whole number (a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not a whole number")
    return value


def as_float(value: Any) -> float:
    """Return ``value`` as a float if it is a number (a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def as_str(value: Any) -> str:
    """Return ``value`` if it is a string."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return value
