import urllib.error
import urllib.request

from stream_app.metrics.health import Health
from stream_app.metrics.server import MetricsServer
from stream_app.metrics.worker_metrics import CHUNKS


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_health_liveness_follows_the_beat() -> None:
    clock = Clock()
    health = Health(stall_after=10.0, clock=clock)
    health.beat()
    assert health.alive()[0]
    clock.now += 11
    ok, reason = health.alive()
    assert not ok and "silent" in reason


def test_readiness_names_failing_checks() -> None:
    clock = Clock()
    health = Health(clock=clock)
    health.beat()
    assert health.ready() == (False, "starting")
    health.set_ready("model", True)
    health.set_ready("kafka", False)
    assert health.ready() == (False, "not ready: kafka")
    health.set_ready("kafka", True)
    assert health.ready() == (True, "ready")


def test_server_serves_metrics_and_probes() -> None:
    clock = Clock()
    health = Health(stall_after=10.0, clock=clock)
    health.beat()
    server = MetricsServer(health, "127.0.0.1", 0).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        CHUNKS.labels(outcome="accepted").inc()
        status, body = get(base + "/metrics")
        assert status == 200 and 'stream_app_chunks_total{outcome="accepted"}' in body
        assert get(base + "/healthz")[0] == 200
        assert get(base + "/readyz")[0] == 503
        health.set_ready("model", True)
        assert get(base + "/readyz")[0] == 200
        clock.now += 60
        assert get(base + "/healthz")[0] == 503
        assert get(base + "/nope")[0] == 404
    finally:
        server.stop()
