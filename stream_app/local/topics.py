"""Create the service's topics (idempotently) and wait until every partition has a leader."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource  # type: ignore[attr-defined]  # no __all__ there
from confluent_kafka.cimpl import NewTopic

from stream_app.clients.described_config import ConfigUnreadable, config_values
from stream_app.clients.kafka_config import admin_config
from stream_app.config import Settings
from stream_app.local.admin import admin_client
from stream_app.local.exceptions import LocalStackError


def service_topics(settings: Settings) -> list[str]:
    """Return the topics of the data flow: input, output, dead letters and control."""
    k = settings.kafka
    return [k.input_topic, k.output_topic, k.dlq_topic, k.control_topic]


def ensure_topics(
    settings: Settings,
    extra_topics: Iterable[str] = (),
    *,
    partitions: int | None = None,
    include_service_topics: bool = True,
    timeout: float = 30.0,
    config: Mapping[str, str] | None = None,
) -> list[str]:
    """Create the service topics and ``extra_topics`` when missing; existing ones are left as they are.

    Args:
        settings: supplies the broker, topic names, partition count and replication factor.
        extra_topics: more topics to create (tests use fresh names).
        partitions: overrides ``settings.kafka.partitions`` for the topics created by this call.
        include_service_topics: False creates only ``extra_topics``.
        timeout: seconds to wait for the broker, and again for partition leaders.
        config: topic configuration for the topics this call creates (e.g. ``cleanup.policy``).

    Returns:
        The names this call created (empty when all existed).

    Raises:
        LocalStackError: when a topic can neither be created nor found.
    """
    names = [*service_topics(settings)] if include_service_topics else []
    names += [t for t in extra_topics if t not in names]
    if not names:
        return []
    count = partitions if partitions is not None else settings.kafka.partitions
    admin = _admin(settings)
    replicas = settings.kafka.replication_factor
    new = [NewTopic(n, num_partitions=count, replication_factor=replicas, config=dict(config or {})) for n in names]
    created: list[str] = []
    for name, future in admin.create_topics(new, request_timeout=timeout, operation_timeout=timeout).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            error = exc.args[0]
            if not (isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS):
                raise LocalStackError(f"could not create topic {name!r}: {error}") from exc
    wait_for_leaders(admin, names, timeout=timeout)
    return created


def delete_topics(settings: Settings, names: Iterable[str], timeout: float = 30.0) -> None:
    """Delete topics, ignoring those already gone (tests clean up their fresh topics with it)."""
    names = list(names)
    if not names:
        return
    admin = _admin(settings)
    futures = admin.delete_topics(names, operation_timeout=timeout, request_timeout=timeout)
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            error = exc.args[0]
            if not (isinstance(error, KafkaError) and error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
                raise LocalStackError(f"could not delete topic {name!r}: {error}") from exc


def topic_config(settings: Settings, names: Iterable[str], key: str, timeout: float = 30.0) -> dict[str, str]:
    """Return one configuration value (``key``, e.g. ``delete.retention.ms``) of each topic, as the broker has it.

    Raises:
        LocalStackError: a topic's configuration could not be read.
    """
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
    if not resources:
        return {}
    admin = _admin(settings)  # kept referenced until the answers are in: a collected client cancels them
    try:
        return config_values(admin, resources, key, timeout)
    except (ConfigUnreadable, TimeoutError) as exc:
        raise LocalStackError(f"topic configuration: {exc}") from exc


def _admin(settings: Settings) -> AdminClient:
    """Return an admin client with the configured security (its refusals reported in words)."""
    conf = admin_config(settings.kafka)
    return admin_client(conf.pop("bootstrap.servers"), conf)


def wait_for_leaders(admin: AdminClient, names: Iterable[str], timeout: float) -> None:
    """Block until each topic's metadata lists partitions that all have a leader.

    A freshly created topic can be announced before its leaders are elected; producing to it then fails.
    """
    pending = set(names)
    deadline = time.monotonic() + timeout
    while pending:
        try:
            metadata = admin.list_topics(timeout=max(1.0, min(5.0, deadline - time.monotonic())))
        except KafkaException:
            metadata = None
        if metadata is not None:
            for name in list(pending):
                topic = metadata.topics.get(name)
                if (
                    topic is not None
                    and topic.error is None
                    and topic.partitions
                    and all(p.leader >= 0 for p in topic.partitions.values())
                ):
                    pending.discard(name)
        if not pending:
            return
        if time.monotonic() >= deadline:
            missing = ", ".join(sorted(pending))
            raise LocalStackError(f"topics without leaders after {timeout:.0f} s: {missing}")
        time.sleep(0.2)
