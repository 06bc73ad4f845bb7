"""`stream-app captions`: a small web page following the transcripts topic, by server-sent events.

Three threads of work: the tail (a `TranscriptTail` in a thread) feeds the `CaptionBoard`; the board's
updates go to every connected page through a `Hub`; `ThreadingHTTPServer` serves ``/`` (the page),
``/events`` (the event stream: the board's snapshot, then every update) and ``/healthz``. A page
that falls behind (its queue full) is dropped; its browser reconnects by itself and gets a fresh
snapshot, which the page applies by the same rule, so nothing shows twice.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

import orjson

from stream_app.captions.board import CaptionBoard
from stream_app.wire.segment import TranscriptSegment

log = logging.getLogger(__name__)

KEEPALIVE_S = 15.0  # an SSE comment this often keeps proxies from closing an idle stream
PAGE_QUEUE = 1000  # updates waiting for one page before it is dropped (it reconnects)


class Hub:
    """The board and the pages listening to it; thread-safe."""

    def __init__(self, board: CaptionBoard) -> None:
        self._board = board
        self._lock = threading.Lock()
        self._pages: set[queue.Queue[dict[str, Any] | None]] = set()

    def take(self, segment: TranscriptSegment) -> None:
        """Apply a segment to the board and send its update, if any, to every page."""
        with self._lock:
            update = self._board.apply(segment)
            if update is None:
                return
            for page in list(self._pages):
                try:
                    page.put_nowait(update)
                except queue.Full:
                    self._pages.discard(page)
                    page.put(None)  # ends that page's stream; EventSource reconnects

    def subscribe(self) -> tuple[list[dict[str, Any]], queue.Queue[dict[str, Any] | None]]:
        """Return the snapshot and a queue of the updates after it (no update falls between the two)."""
        page: queue.Queue[dict[str, Any] | None] = queue.Queue(PAGE_QUEUE + 1)
        with self._lock:
            self._pages.add(page)
            return self._board.snapshot(), page

    def unsubscribe(self, page: queue.Queue[dict[str, Any] | None]) -> None:
        """Forget a page that went away."""
        with self._lock:
            self._pages.discard(page)

    def close(self) -> None:
        """End every page's stream."""
        with self._lock:
            for page in self._pages:
                page.put(None)
            self._pages.clear()


def page_html() -> bytes:
    """Return the caption page (one self-contained HTML file, shipped in the package)."""
    return resources.files("stream_app.captions").joinpath("page.html").read_bytes()


def sse(update: dict[str, Any]) -> bytes:
    """Encode one update as a server-sent event named ``segment``."""
    return b"event: segment\ndata: " + orjson.dumps(update) + b"\n\n"


def handler_for(hub: Hub, title: str, stopping: threading.Event) -> type[BaseHTTPRequestHandler]:
    """Build the request handler class serving ``hub``."""
    page = page_html().replace(b"{{TITLE}}", title.encode("utf-8"))

    class CaptionHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", page)
            elif path == "/healthz":
                self._send(200, "text/plain; charset=utf-8", b"ok\n")
            elif path == "/events":
                self._events()
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found\n")

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s %s", self.address_string(), format % args)

        def _send(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _events(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            snapshot, updates = hub.subscribe()
            try:
                self.wfile.write(b"retry: 1000\n\n" + b"".join(sse(u) for u in snapshot))
                self.wfile.flush()
                for chunk in _stream(updates, stopping):
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the page went away
            finally:
                hub.unsubscribe(updates)

    return CaptionHandler


def _stream(updates: queue.Queue[dict[str, Any] | None], stopping: threading.Event) -> Iterator[bytes]:
    while not stopping.is_set():
        try:
            update = updates.get(timeout=KEEPALIVE_S)
        except queue.Empty:
            yield b": keep-alive\n\n"
            continue
        if update is None:
            return
        yield sse(update)


class CaptionServer:
    """The HTTP server and the thread that feeds it from ``follow`` (a callable that yields segments)."""

    def __init__(
        self, host: str, port: int, follow: Callable[[threading.Event], Iterator[TranscriptSegment]], title: str
    ) -> None:
        self.hub = Hub(CaptionBoard())
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self._follow = follow
        self.http = ThreadingHTTPServer((host, port), handler_for(self.hub, title, self.stopping))
        self.http.daemon_threads = True
        self._feeder = threading.Thread(target=self._feed, name="captions-feed", daemon=True)

    @property
    def url(self) -> str:
        """Where the page is."""
        host, port = self.http.server_address[:2]
        return f"http://{host!s}:{port}/"

    def serve(self) -> None:
        """Follow the topic and serve pages until `stop` (or until following fails: `error` says why)."""
        self._feeder.start()
        try:
            self.http.serve_forever(poll_interval=0.5)
        finally:
            self.stopping.set()
            self.hub.close()
            self.http.server_close()
            self._feeder.join(10.0)

    def stop(self) -> None:
        """Make `serve` return (from another thread or a signal handler)."""
        self.stopping.set()
        threading.Thread(target=self.http.shutdown, daemon=True).start()

    def _feed(self) -> None:
        try:
            for segment in self._follow(self.stopping):
                self.hub.take(segment)
        except BaseException as exc:  # reported by the command; the page keeps what it has
            self.error = exc
            self.stop()
