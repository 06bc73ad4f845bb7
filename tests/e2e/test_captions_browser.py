"""`stream-app captions` in a real headless chromium: finals replace interims in place, gaps marked, replays ignored."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from stream_app.config import Settings
from stream_app.local import LocalStack, delete_topics, ensure_topics
from stream_app.testing.browser import HeadlessChromium
from stream_app.testing.segments import make_segment, produce_segments
from stream_app.testing.service import free_port
from stream_app.wire.segment import Gap

PAGE_STATE = """
return Array.from(document.querySelectorAll("section.stream")).map((s) => ({
  stream: s.dataset.streamId,
  ended: s.classList.contains("ended"),
  segments: Array.from(s.querySelectorAll("p.segment")).map((p) => ({
    id: p.dataset.segmentId,
    final: p.classList.contains("final"),
    same_element: p.dataset.probe === "interim",
    text: p.childNodes.length ? p.childNodes[0].nodeValue : "",
    gaps: Array.from(p.querySelectorAll("span.gap")).map((g) => g.dataset.reason),
  })),
}));
"""


@pytest.fixture
def topic(settings: Settings, local_stack: LocalStack) -> Iterator[str]:
    name = f"test-captions-{uuid.uuid4().hex}"
    ensure_topics(settings, [name], partitions=2, include_service_topics=False)
    yield name
    delete_topics(settings, [name])


@pytest.fixture
def captions_url(settings: Settings, topic: str) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_APP_")}
    env["STREAM_APP_KAFKA__BOOTSTRAP_SERVERS"] = settings.kafka.bootstrap_servers
    command = [sys.executable, "-m", "stream_app.cli.main", "captions", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--topic", topic, "--from-beginning"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until(lambda: _answers(url + "healthz"), lambda: "captions server not answering", server)
        yield url
    finally:
        server.terminate()
        server.wait(30)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _wait_until(
    done: Callable[[], Any], explain: Callable[[], str], server: subprocess.Popen[bytes] | None = None
) -> Any:
    deadline = time.monotonic() + 60
    while True:
        result = done()
        if result:
            return result
        if server is not None and server.poll() is not None:
            raise AssertionError(f"captions exited: {server.stdout.read().decode() if server.stdout else ''}")
        assert time.monotonic() < deadline, explain()
        time.sleep(0.3)


def test_the_page_shows_final_text_in_place_of_interims_once(settings: Settings, topic: str, captions_url: str) -> None:
    def seg(stream: str, index: int, text: str, **kwargs: Any) -> Any:
        return make_segment(stream, index, text, timed=True, **kwargs)

    produce_segments(settings.kafka, topic, [seg("desk", 0, "And so my", final=False, revision=0)])
    with HeadlessChromium() as browser:
        browser.get(captions_url)

        def state() -> Any:
            return browser.execute(PAGE_STATE)

        _wait_until(lambda: state() and state()[0]["segments"], lambda: f"no interim shown: {state()}")
        shown = [{"id": "desk:0", "final": False, "same_element": False, "text": "And so my", "gaps": []}]
        assert state()[0]["segments"] == shown
        browser.execute("""document.querySelector('[data-segment-id="desk:0"]').dataset.probe = "interim";""")

        lost = Gap(9.0, 10.5, "lost_chunks", "seq 90-104 never arrived")
        first_run = [
            seg("desk", 0, "And so my fellow", final=False, revision=1),
            seg("hall", 0, "Ask", final=False, revision=0),
            seg("desk", 0, "And so my fellow Americans.", revision=2),
            seg("hall", 0, "Ask not.", revision=1, gaps=(lost,)),
        ]
        failover = [  # the replica that takes over publishes the same ids again, interims included
            seg("desk", 0, "And so my", final=False, revision=0),
            seg("desk", 0, "And so my fellow", final=False, revision=1),
            seg("desk", 0, "And so my fellow Americans.", revision=2),
            seg("hall", 0, "Ask", final=False, revision=0),
        ]
        produce_segments(settings.kafka, topic, [*first_run, *failover, seg("desk", 1, "ask not what", eos=True)])

        def finished() -> Any:
            page = {s["stream"]: s for s in state()}
            return page if "hall" in page and len(page["desk"]["segments"]) == 2 else None

        page = _wait_until(finished, lambda: f"the page never showed both streams: {state()}")
        assert page["desk"]["segments"] == [  # the interim's own element now holds the final text
            {"id": "desk:0", "final": True, "same_element": True, "text": "And so my fellow Americans.", "gaps": []},
            {"id": "desk:1", "final": True, "same_element": False, "text": "ask not what", "gaps": []},
        ]
        assert page["desk"]["ended"] and not page["hall"]["ended"]
        hall = [{"id": "hall:0", "final": True, "same_element": False, "text": "Ask not.", "gaps": ["lost_chunks"]}]
        assert page["hall"]["segments"] == hall

        browser.get(captions_url)  # a reload (as after a dropped connection) gets the same lines once
        reloaded = _wait_until(finished, lambda: f"after reload: {state()}")
        page["desk"]["segments"][0]["same_element"] = False  # a new page: new elements
        assert reloaded == page
        assert [s["stream"] for s in state()] == ["desk", "hall"]  # laid out in the order they first spoke
