"""A small HTTP server for Prometheus and orchestrators: /metrics, /healthz, /readyz.

It runs in a daemon thread so that scrapes and probes answer even while the event loop is busy,
and so that a stalled loop is reported instead of hiding the probe.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from stream_app.metrics.health import Health

log = logging.getLogger(__name__)


class MetricsServer:
    """Serve metrics and health on ``host:port`` until `stop` is called."""

    def __init__(self, health: Health, host: str, port: int, registry: CollectorRegistry = REGISTRY) -> None:
        self.health = health
        self.registry = registry
        handler = self._handler_class()
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="metrics-http", daemon=True)

    @property
    def port(self) -> int:
        """The bound port (useful when 0 asked the OS for a free one)."""
        return int(self._httpd.server_address[1])

    def start(self) -> MetricsServer:
        """Start serving in the background."""
        self._thread.start()
        log.info("metrics and health on http://%s:%d (/metrics /healthz /readyz)", *self._httpd.server_address[:2])
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, generate_latest(server.registry), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    ok, reason = server.health.alive()
                    self._send(200 if ok else 503, reason.encode() + b"\n", "text/plain")
                elif path == "/readyz":
                    ok, reason = server.health.ready()
                    self._send(200 if ok else 503, reason.encode() + b"\n", "text/plain")
                else:
                    self._send(404, b"not found: try /metrics, /healthz or /readyz\n", "text/plain")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("http: " + format, *args)

        return Handler
