"""Errors of the streaming logic (buffer, merger and their stored state)."""

from __future__ import annotations


class StreamingError(Exception):
    """Base class of the streaming package's errors."""


class WindowingConfigError(StreamingError, ValueError):
    """Window length, overlap, step or caps that cannot form a window grid."""


class StateDecodeError(StreamingError, ValueError):
    """Stored buffer or merger state that is not ours, truncated, or of an unknown version."""
