"""A live model switch through the control topic while three streams run on the real broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from stream_app.config import Settings
from stream_app.testing.corpus import CorpusItem, build_corpus
from stream_app.testing.service import ServiceHarness
from stream_app.worker.control import ReplicaStatus, live, publish_command, read_statuses, switch_command

SWITCH_AFTER = 12.0  # seconds into the streams (they last about 30 s each, published in real time)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> list[CorpusItem]:
    items = build_corpus(tmp_path_factory.mktemp("corpus"), files=3, sentences_per_file=6, long_silence=False)
    assert all(item.duration >= SWITCH_AFTER * 2 for item in items)
    return items


@pytest.fixture
def service(settings: Settings) -> Iterator[ServiceHarness]:
    with ServiceHarness(settings) as harness:
        harness.start("r1", wait=180)
        yield harness


def _wait_for_status(harness: ServiceHarness, predicate: object, timeout: float) -> dict[str, ReplicaStatus]:
    statuses = read_statuses(harness.settings.kafka, timeout=timeout, follow_until=predicate)  # type: ignore[arg-type]
    return live(statuses)


def test_switch_mid_stream_loses_nothing(service: ServiceHarness, speech: list[CorpusItem]) -> None:
    kafka = service.settings.kafka
    # the replica's first status means its listener follows the control topic
    first = _wait_for_status(service, lambda s: "r1" in s, 60)
    assert first["r1"].serves("tiny.en", "int8"), first

    ids = [f"switch-{i}" for i in range(len(speech))]
    errors: list[BaseException] = []

    def publish(item: CorpusItem, stream_id: str) -> None:
        try:
            with service.publisher() as publisher:
                publisher.publish_file(item.path, stream_id, chunk_ms=250, realtime=True)
        except BaseException as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=pair) for pair in zip(speech, ids, strict=True)]
    for thread in threads:
        thread.start()
    time.sleep(SWITCH_AFTER)
    command = switch_command("base", "int8")
    publish_command(kafka, command)
    answered = _wait_for_status(service, lambda s: s.get("r1") is not None and s["r1"].command_id == command.id, 120)
    assert answered["r1"].error is None, answered["r1"].error
    assert answered["r1"].serves("base", "int8")
    streams_running = any(thread.is_alive() for thread in threads)
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert streams_running, "the switch landed after the streams ended: nothing was tested"

    collected = service.collect(ids, timeout=300)
    seen_models: set[str] = set()
    for stream_id in ids:
        result = collected[stream_id]
        assert result.transcript.complete, (stream_id, service.log_tail("r1"))
        finals = result.finals()
        assert [s.index for s in finals] == list(range(len(finals))), stream_id
        assert finals[-1].end_of_stream
        models = [s.model for s in finals if s.text.strip()]
        # tiny.en until the switch, base after it, never back
        assert models == sorted(models, key=lambda m: m != "tiny.en"), (stream_id, models)
        assert models[-1] == "base", (stream_id, models)
        assert all(s.precision == "int8" for s in finals)
        seen_models.update(models)
    assert seen_models == {"tiny.en", "base"}

    # the old model is gone from the replica: only base is loaded and active
    latest = _wait_for_status(service, lambda s: "r1" in s and len(s["r1"].loaded) == 1, 60)["r1"]
    assert [(m["model"], m["precision"], m["active"]) for m in latest.loaded] == [("base", "int8", True)]


def test_bad_commands_are_ignored(service: ServiceHarness) -> None:
    kafka = service.settings.kafka
    _wait_for_status(service, lambda s: "r1" in s, 60)
    from confluent_kafka import Producer

    from stream_app.clients.kafka_config import producer_config

    producer = Producer(producer_config(kafka))
    producer.produce(kafka.control_topic, value=b"{not json")
    producer.produce(kafka.control_topic, value=b'{"type": "switch", "precision": "int8"}')
    producer.flush(10)
    command = switch_command("no-such-model", "int8")
    publish_command(kafka, command)
    answered = _wait_for_status(service, lambda s: s.get("r1") is not None and s["r1"].command_id == command.id, 60)
    assert answered["r1"].error is not None and "no-such-model" in answered["r1"].error
    assert answered["r1"].serves("tiny.en", "int8")  # still serving what it had
    assert service.replicas["r1"].running


def test_cli_switch_waits_for_every_replica_and_list_shows_them(service: ServiceHarness) -> None:
    import subprocess
    import sys

    import orjson

    _wait_for_status(service, lambda s: "r1" in s, 60)
    env = service.worker_env({"STREAM_APP_OPTIMIZATION__MODEL_ROOTS": '["/no/such"]'})

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "stream_app.cli.main", "models", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)

    switched = cli("switch", "tiny.en", "--precision", "int8_float32", "--wait", "60")
    assert switched.returncode == 0, switched.stdout + switched.stderr
    assert "r1: serving tiny.en@int8_float32" in switched.stdout
    listed = cli("list", "--json")
    replicas = orjson.loads(listed.stdout.splitlines()[-1])["replicas"]
    assert [(r["replica"], r["active"]["precision"]) for r in replicas] == [("r1", "int8_float32")]
    refused = cli("switch", "no-such-model", "--wait", "60")  # neither a registry name nor a folder under the roots
    assert refused.returncode == 2 and "no-such-model" in refused.stdout, refused.stdout + refused.stderr
    failed = cli("switch", "/no/such/model", "--wait", "60")  # passes this client's roots; the replica has none
    assert failed.returncode == 1 and "r1: failed" in failed.stdout
    assert cli("switch", "base", "--precision", "int4").returncode == 2


def test_a_restarted_replica_starts_on_the_model_switched_to(service: ServiceHarness) -> None:
    """A replica that starts after a switch serves what the others serve, before it takes any partition."""
    kafka = service.settings.kafka
    _wait_for_status(service, lambda s: "r1" in s, 60)
    command = switch_command("base", "int8")
    publish_command(kafka, command)
    answered = _wait_for_status(service, lambda s: s.get("r1") is not None and s["r1"].command_id == command.id, 120)
    assert answered["r1"].serves("base", "int8"), answered["r1"]
    service.stop("r1")
    restarted_at = time.time()
    service.start("r1", wait=180)  # ready: partitions owned, so records may be processed from now on
    statuses = _wait_for_status(service, lambda s: "r1" in s and s["r1"].at > restarted_at, 60)
    status = statuses["r1"]
    assert status.serves("base", "int8"), status
    assert [(m["model"], m["active"]) for m in status.loaded] == [("base", True)]  # tiny.en was never loaded
    assert status.command_id == command.id
