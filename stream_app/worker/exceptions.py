"""Errors of the worker, by who is at fault: the stored state, the infrastructure, or a window."""

from __future__ import annotations


class WorkerError(Exception):
    """Base class of the worker's errors."""


class StateCorrupt(WorkerError, ValueError):
    """A stream's stored state is not ours, damaged, stale or incomplete: the stream is reset."""


class InfrastructureError(WorkerError):
    """The broker (or another service the worker needs) failed: retried, never acknowledged past."""


class Revoked(WorkerError):
    """The partition was taken away while work for it was in flight: the work is abandoned."""


class Fenced(Revoked):
    """A state write from an owner that lost its partition (its owner epoch is not the current one): refused."""
