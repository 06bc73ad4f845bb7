"""Errors of the local stack, each with a message a developer can act on."""

from __future__ import annotations


class LocalStackError(RuntimeError):
    """The local Kafka or Redis could not be fetched, started, reached or stopped."""
