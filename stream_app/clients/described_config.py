"""One configuration value of several brokers or topics, as the cluster has it (``describe_configs``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient


class ConfigUnreadable(Exception):
    """The configuration of one resource (``name``) could not be read."""

    def __init__(self, name: str, cause: KafkaException) -> None:
        super().__init__(f"could not read the configuration of {name!r}: {cause}")
        self.name = name
        self.cause = cause


def config_values(admin: AdminClient, resources: Sequence[Any], key: str, timeout: float) -> dict[str, str]:
    """Return ``key``'s value for each resource (``ConfigResource``) that has one, by resource name.

    Raises:
        ConfigUnreadable: a resource's configuration could not be read.
        TimeoutError: no answer within ``timeout`` seconds.
    """
    values: dict[str, str] = {}
    for resource, future in admin.describe_configs(list(resources), request_timeout=timeout).items():
        try:
            entries = future.result(timeout=timeout)
        except KafkaException as exc:
            raise ConfigUnreadable(resource.name, exc) from exc
        entry = entries.get(key)
        if entry is not None and entry.value is not None:
            values[resource.name] = str(entry.value)
    return values
