"""Errors raised while resolving, loading or running a model."""

from __future__ import annotations


class InferenceError(Exception):
    """Base class of every error the inference package raises on purpose."""


class ModelNotFound(InferenceError):
    """A model name or path leads to no usable local CTranslate2 folder; the message says how to fix it."""


class ModelFilesCorrupt(InferenceError):
    """A model's files exist but are inconsistent (for example a joined model.bin of the wrong size)."""


class PrecisionError(InferenceError, ValueError):
    """A precision is unknown, impossible for Whisper (int4), or has no supported fallback on the device."""


class DeviceUnavailable(InferenceError):
    """The configured device (for example ``cuda``) cannot run CTranslate2 on this machine."""


class ModelOverBudget(InferenceError):
    """A model a switch asked for would not fit ``optimization.memory_budget`` by itself (estimated)."""
