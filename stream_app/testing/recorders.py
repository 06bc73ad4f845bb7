"""Many recorders at once: one thread and one `ChunkPublisher` per speech script, as separate devices would be."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from stream_app.clients.publisher import ChunkPublisher, DeliveryFailed
from stream_app.testing.speech_streams import FORMAT, SpeechScript, UtteranceLibrary


@dataclass(frozen=True)
class RecorderResult:
    """How one recorder's stream went: chunks handed to its publisher, and what it reported lost."""

    stream_id: str
    sent: int
    undelivered: int
    error: str | None  # a DeliveryFailed message, or any other failure of the recorder
    seconds: float
    producers_replaced: int = 0  # stalled producers its publisher replaced (their chunks sent again)


class RecorderFleet:
    """Publish every script as its own stream, from its own thread, starts spread over ``stagger`` seconds.

    ``realtime`` paces each stream at its audio's speed (a live recorder); otherwise each is sent as
    fast as the publisher goes.
    """

    def __init__(
        self,
        open_publisher: Callable[[], ChunkPublisher],
        scripts: Sequence[SpeechScript],
        library: UtteranceLibrary,
        *,
        chunk_ms: float,
        realtime: bool = True,
        stagger: float = 5.0,
    ) -> None:
        self._open = open_publisher
        self._scripts = list(scripts)
        self._library = library
        self._chunk_ms = chunk_ms
        self._realtime = realtime
        self._stagger = stagger
        self._lock = threading.Lock()
        self.results: dict[str, RecorderResult] = {}
        self._threads = [
            threading.Thread(target=self._record, args=(i, s), name=f"recorder-{s.stream_id}", daemon=True)
            for i, s in enumerate(self._scripts)
        ]

    def start(self) -> None:
        """Start every recorder thread."""
        for thread in self._threads:
            thread.start()

    @property
    def done(self) -> bool:
        """Whether every recorder finished (delivered or gave up)."""
        return not any(thread.is_alive() for thread in self._threads)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for every recorder (at most ``timeout`` seconds in all); return whether all finished."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return self.done

    def _record(self, index: int, script: SpeechScript) -> None:
        time.sleep(self._stagger * index / max(1, len(self._scripts)))
        started = time.monotonic()
        chunks = script.chunks(self._library, self._chunk_ms)
        publisher: ChunkPublisher | None = None
        try:
            with self._open() as publisher:
                report = publisher.publish_chunks(script.stream_id, chunks, FORMAT, realtime=self._realtime)
            result = RecorderResult(script.stream_id, report.chunks, 0, None, time.monotonic() - started)
        except DeliveryFailed as failed:
            elapsed = time.monotonic() - started
            result = RecorderResult(script.stream_id, failed.sent, failed.undelivered, str(failed), elapsed)
        except Exception as exc:  # a recorder that dies is a result to report, not a crash of the benchmark
            elapsed = time.monotonic() - started
            result = RecorderResult(script.stream_id, 0, 0, f"{type(exc).__name__}: {exc}", elapsed)
        if publisher is not None and publisher.replacements:
            result = replace(result, producers_replaced=publisher.replacements)
        with self._lock:
            self.results[script.stream_id] = result
