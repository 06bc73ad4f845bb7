"""Run one worker replica: the metrics server, the control listener, and faust's worker loop."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

from faust.worker import Worker

from stream_app.config import Settings
from stream_app.inference.engine import InferenceEngine
from stream_app.inference.registry import ModelKey
from stream_app.local.exceptions import LocalStackError
from stream_app.local.topics import ensure_topics, topic_config
from stream_app.metrics.server import MetricsServer
from stream_app.worker.app import CHANGELOG_CONFIG, changelog_topics, create_worker_app
from stream_app.worker.control import ControlListener
from stream_app.worker.control_start import read_control_history, start_engine

log = logging.getLogger(__name__)

KAFKA_DEFAULT_DELETE_RETENTION_MS = 24 * 3600 * 1000


def run_worker(
    settings: Settings, *, replica: str | None = None, web_port: int | None = None, metrics_port: int | None = None
) -> int:
    """Run until interrupted (SIGINT/SIGTERM); returns the exit status."""
    if web_port is not None:
        settings = dataclasses.replace(settings, worker=dataclasses.replace(settings.worker, web_port=web_port))
    if metrics_port is not None:
        settings = dataclasses.replace(settings, metrics=dataclasses.replace(settings.metrics, port=metrics_port))
    # Created before faust starts, with the input topic's partition count: a replica that joins
    # before faust has seen its changelogs otherwise fails every record with PartitionsMismatch.
    changelogs = changelog_topics(settings)
    ensure_topics(settings, changelogs, include_service_topics=False, config=CHANGELOG_CONFIG)
    retention = changelog_delete_retention_ms(settings, changelogs)
    history = read_control_history(settings.kafka)  # the model the running replicas serve, if one was switched to
    engine = InferenceEngine(settings)
    started = time.monotonic()
    # before joining the group: a replica takes partitions only once it can serve them, on the same model
    key, choice = start_engine(_starter(engine), history.switches, settings.optimization.model_roots)
    log.info("model %s ready in %.1f s", key, time.monotonic() - started)
    worker_app = create_worker_app(settings, replica=replica, engine=engine, delete_retention_ms=retention)
    applied = choice.command.id if choice.command is not None else None
    control = ControlListener(
        settings.kafka, worker_app.engine, worker_app.replica, resume=history.ends, applied=applied
    )

    async def follow_control() -> None:  # runs on faust's loop once the worker is up
        control.start(asyncio.get_running_loop())

    worker_app.app.task(follow_control)

    server = None
    if settings.metrics.enabled:
        server = MetricsServer(worker_app.health, settings.metrics.host, settings.metrics.port).start()
    try:
        worker = Worker(worker_app.app, loglevel="INFO", quiet=True, redirect_stdouts=False)
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        control.stop()
        worker_app.engine.close()
        if server is not None:
            server.stop()
    return 0


def changelog_delete_retention_ms(settings: Settings, changelogs: list[str]) -> int:
    """Return the shortest ``delete.retention.ms`` of the changelogs, as the broker has it.

    Changelogs created by an earlier release keep Kafka's default (a day) unless altered; that default
    is assumed when the configuration cannot be read.
    """
    try:
        values = topic_config(settings, changelogs, "delete.retention.ms")
    except LocalStackError as exc:
        log.warning("%s; assuming Kafka's default delete.retention.ms", exc)
        values = {}
    found = [int(v) for v in values.values() if v.isdigit()]
    retention = min(found) if len(found) == len(changelogs) else KAFKA_DEFAULT_DELETE_RETENTION_MS
    log.info("changelog tombstones are kept %.1f days: older local state is restored afresh", retention / 86_400_000)
    return retention


def _starter(engine: InferenceEngine) -> Callable[[str | None, str | None], ModelKey]:
    """``engine.start``, refusing a switched-to model over the memory budget as the running replicas did."""

    def start(model: str | None, precision: str | None) -> ModelKey:
        if model is not None:
            engine.check_budget(model, precision)
        return engine.start(model, precision)

    return start
