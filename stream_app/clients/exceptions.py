"""Errors of the Kafka clients (publisher and tail)."""

from __future__ import annotations


class PublishError(RuntimeError):
    """Chunks were not all acknowledged by the broker; the message says how many and why."""


class TailError(RuntimeError):
    """The transcripts topic could not be read (missing topic, broker unreachable, fatal consumer error)."""


class KafkaAccessError(ConnectionError):
    """Kafka refused this client (credentials, certificate, protocol) or did not answer; the message says which."""
