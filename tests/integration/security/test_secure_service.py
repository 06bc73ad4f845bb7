"""The live path through a SASL_SSL broker and a TLS Redis with a password, and a locked control plane.

One replica runs with the secure stack's client overlay (as an operator would pass it with ``-c``)
and model roots in a temporary folder. The control tests run first: the jfk stream that follows
shows that the replica still serves after every refused command.
"""

from __future__ import annotations

import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from secure_fixtures import SecureStack

from stream_app.bench.scrape import sample, scrape
from stream_app.clients.kafka_config import producer_config
from stream_app.inference.models import resolve_model
from stream_app.testing.service import ServiceHarness
from stream_app.testing.wer import word_error_rate
from stream_app.worker.control import ReplicaStatus, encode_status, live, publish_command, read_statuses, switch_command

STATUS_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def model_roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-roots")


@pytest.fixture(scope="module")
def service(secure_stack: SecureStack, model_roots: Path) -> Iterator[ServiceHarness]:
    env = {
        "STREAM_APP_CONFIG": str(secure_stack.client_config),
        "STREAM_APP_OPTIMIZATION__MODEL_ROOTS": f'["{model_roots}"]',
        # a TLS handshake on a loaded 2-core CI machine can pass the 50 ms default; the test is about TLS, not speed
        "STREAM_APP_CACHING__REDIS_TIMEOUT": "2s",
    }
    with ServiceHarness(secure_stack.settings, env=env) as harness:
        harness.start("r1", wait=180)
        yield harness


def _status(harness: ServiceHarness, predicate: object) -> ReplicaStatus:
    statuses = read_statuses(harness.settings.kafka, timeout=STATUS_TIMEOUT, follow_until=predicate)  # type: ignore[arg-type]
    return live(statuses)["r1"]


def _switch(harness: ServiceHarness, model: str) -> ReplicaStatus:
    command = switch_command(model, None)
    publish_command(harness.settings.kafka, command)
    status = _status(harness, lambda s: "r1" in s and s["r1"].command_id == command.id)
    assert status.command_id == command.id, (model, status, harness.log_tail("r1"))
    return status


def test_malformed_control_records_are_skipped_and_the_listener_lives(service: ServiceHarness) -> None:
    _status(service, lambda s: "r1" in s)
    producer = Producer(producer_config(service.settings.kafka))
    topic = service.settings.kafka.control_topic
    for value in (
        b"{not json",
        b'{"type": "switch", "model": "base", "precision": 5}',
        b'{"type": "switch", "model": "base", "issued_at": "now"}',
        b'{"type": "status", "replica": "x", "at": "yesterday"}',
        b'{"type": "status", "replica": "x", "loaded": [1, 2]}',
        b'{"type": "reboot"}',
        b"\xff\xfe",
    ):
        producer.produce(topic, value=value)
    assert producer.flush(10) == 0
    # the listener is still there: it answers the next command (with a refusal: the path is relative)
    status = _switch(service, "models/evil")
    assert status.error is not None and "absolute" in status.error
    assert status.serves("tiny.en", "int8")
    assert "could not be handled" not in service.log_tail("r1", lines=400)  # each one was refused by the decoder


def test_switches_outside_the_model_roots_are_refused_with_the_reason(
    service: ServiceHarness, model_roots: Path, tmp_path: Path
) -> None:
    tiny = resolve_model("tiny.en", tmp_path)
    outside = tmp_path / "outside"
    shutil.copytree(tiny, outside)  # a real model: only the allow-list stands between it and the replica
    (model_roots / "escape").symlink_to(outside, target_is_directory=True)
    refused = {
        str(outside): "outside the model roots",
        str(model_roots / "escape"): "outside the model roots (through a link)",  # not where it leads
        f"{model_roots}/../outside": "'..'",
        "~root/models": "home folder",
    }
    for request, reason in refused.items():
        status = _switch(service, request)
        assert status.error is not None and reason in status.error, (request, status.error)
        assert "ModelNotAllowed" in status.error
        assert request == str(outside) or str(outside) not in status.error  # the topic learns no other path
        assert status.serves("tiny.en", "int8"), status
    assert service.replicas["r1"].running and service.replicas["r1"].ready()

    # a folder under the roots is loaded; then back to the registry model
    inside = model_roots / "tiny-copy"
    shutil.copytree(tiny, inside)
    allowed = _switch(service, str(inside))
    assert allowed.error is None and allowed.serves(str(inside.resolve()), "int8"), allowed
    back = _switch(service, "tiny.en")
    assert back.error is None and back.serves("tiny.en", "int8"), back


def test_jfk_end_to_end_through_sasl_ssl_and_tls_redis(
    service: ServiceHarness, secure_stack: SecureStack, jfk_path: Path, jfk_reference: str
) -> None:
    client = secure_stack.redis()
    before = set(client.scan_iter(match="stream-app:transcript:*"))
    with service.publisher() as publisher:
        publisher.publish_file(jfk_path, "jfk-secure", chunk_ms=100)
    collected = service.collect(["jfk-secure"], timeout=180)["jfk-secure"]
    assert collected.transcript.complete, service.log_tail("r1")
    assert word_error_rate(jfk_reference, collected.transcript.text) <= 0.10, collected.transcript.text
    finals = collected.finals()
    assert finals[-1].end_of_stream and all(s.model == "tiny.en" for s in finals)

    # the replica's cache reached the TLS Redis as the ACL user: new entries, and no Redis error on the way
    deadline = time.monotonic() + 30
    while not set(client.scan_iter(match="stream-app:transcript:*")) - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert set(client.scan_iter(match="stream-app:transcript:*")) - before, service.log_tail("r1")
    metrics = service.replicas["r1"].metrics()
    samples = scrape(metrics)
    assert sample(samples, "stream_app_cache_errors_total", tier="redis") == 0, service.log_tail("r1")
    assert sample(samples, "stream_app_cache_breaker_state", tier="redis") == 0

    # no secret in its log, its metrics or its status records
    secrets = [secure_stack.material.password(name) for name in ("kafka-client", "redis-client")]
    log = service.replicas["r1"].log_path.read_text(errors="replace")
    statuses = b"".join(encode_status(s) for s in read_statuses(service.settings.kafka, timeout=10).values())
    for secret in secrets:
        assert secret not in log and secret not in metrics and secret.encode() not in statuses


def test_faust_web_server_is_off_and_only_our_endpoints_answer(service: ServiceHarness) -> None:
    replica = service.replicas["r1"]
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{replica.web_port}/table/", timeout=2)
    for path in ("/metrics", "/healthz", "/readyz"):
        with urllib.request.urlopen(f"http://127.0.0.1:{replica.metrics_port}{path}", timeout=5) as response:
            assert response.status == 200, path
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"http://127.0.0.1:{replica.metrics_port}/table/buffers/", timeout=5)
    assert info.value.code == 404
