"""Whether the workers have read a stream: the consumer group's committed offsets against the chunks sent.

The worker commits an input offset only once the record's segments or dead letter are on the broker,
so a committed offset past a stream's last chunk means every chunk of it has been dealt with.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

POLL_S = 0.5


@dataclass(frozen=True)
class ReadProgress:
    """How far the group got: ``read`` when every partition's commit passed the last chunk sent there."""

    read: bool
    members: int | None  # consumers in the group now (None: the broker did not say)


class GroupProgress:
    """Reads one consumer group's committed offsets and membership (an admin client; it joins nothing)."""

    def __init__(self, config: Mapping[str, Any], group: str) -> None:
        self.group = group
        self._admin = AdminClient(dict(config))

    def committed(self, topic: str, partitions: list[int]) -> dict[int, int]:
        """Return the group's committed offset per partition (-1 where it committed nothing)."""
        request = ConsumerGroupTopicPartitions(self.group, [TopicPartition(topic, p) for p in partitions])
        result = self._admin.list_consumer_group_offsets([request], request_timeout=10.0)[self.group].result()
        return {tp.partition: tp.offset for tp in result.topic_partitions if tp.error is None}

    def members(self) -> int | None:
        """Return how many consumers the group has now."""
        try:
            group = self._admin.describe_consumer_groups([self.group], request_timeout=10.0)[self.group].result()
        except KafkaException:
            return None
        return len(group.members)

    def wait_until_read(self, topic: str, last_offsets: Mapping[int, int], timeout: float) -> ReadProgress:
        """Wait up to ``timeout`` for the group to commit past ``last_offsets`` (partition -> last chunk's offset)."""
        deadline = time.monotonic() + timeout
        partitions = sorted(last_offsets)
        while True:
            try:
                committed = self.committed(topic, partitions)
            except KafkaException:
                committed = {}
            if partitions and all(committed.get(p, -1) > last_offsets[p] for p in partitions):
                return ReadProgress(True, None)
            if time.monotonic() >= deadline:
                return ReadProgress(False, self.members())
            time.sleep(POLL_S)
