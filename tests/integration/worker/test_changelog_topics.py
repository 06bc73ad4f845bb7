"""The changelogs keep their tombstones long enough for a replica's volume to sit unused (real broker)."""

from __future__ import annotations

from collections.abc import Callable

from stream_app.config import Settings
from stream_app.local import delete_topics, ensure_topics
from stream_app.worker.app import CHANGELOG_CONFIG, DELETE_RETENTION_MS
from stream_app.worker.runtime import KAFKA_DEFAULT_DELETE_RETENTION_MS, changelog_delete_retention_ms


def test_changelogs_keep_tombstones_a_week_and_the_worker_reads_what_the_broker_has(
    settings: Settings, new_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    created = unique_name("changelog")
    ensure_topics(settings, [created], include_service_topics=False, config=CHANGELOG_CONFIG)
    assert changelog_delete_retention_ms(settings, [created]) == DELETE_RETENTION_MS == 7 * 24 * 3600 * 1000
    older = new_topic("changelog")  # as an earlier release created them: Kafka's default, a day
    assert changelog_delete_retention_ms(settings, [created, older]) == KAFKA_DEFAULT_DELETE_RETENTION_MS
    delete_topics(settings, [created])
