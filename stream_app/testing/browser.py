"""A real headless browser for tests: Debian's chromium driven through chromedriver's W3C WebDriver API.

No browser is downloaded and no WebDriver library is needed: the protocol is a few JSON requests over
HTTP (new session, navigate, execute script, delete session). Chromium runs with a fresh profile and
without anything that reaches the network by itself.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from types import TracebackType
from typing import Any

from stream_app.testing.service import free_port
from stream_app.testing.tools import require_binary

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
START_S = 30.0


class WebDriverError(RuntimeError):
    """chromedriver answered a command with an error."""


class HeadlessChromium:
    """``with HeadlessChromium() as browser: browser.get(url); browser.execute("return ...")``."""

    def __init__(self) -> None:
        self._chromium = require_binary("chromium")
        self._driver = require_binary("chromedriver")
        self._profile = tempfile.mkdtemp(prefix="stream-app-chromium-")
        self._port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._session: str | None = None

    def __enter__(self) -> HeadlessChromium:
        self._process = subprocess.Popen(
            [self._driver, f"--port={self._port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            self._wait_for_driver()
            options = {"binary": self._chromium, "args": [*CHROMIUM_FLAGS, f"--user-data-dir={self._profile}"]}
            answer = self._call("POST", "/session", {"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}})
            self._session = str(answer["sessionId"])
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def get(self, url: str) -> None:
        """Open ``url`` and wait until the page has loaded."""
        self._call("POST", f"/session/{self._session}/url", {"url": url})

    def execute(self, script: str, *args: Any) -> Any:
        """Run ``script`` (a function body) in the page and return what it returns."""
        return self._call("POST", f"/session/{self._session}/execute/sync", {"script": script, "args": list(args)})

    def close(self) -> None:
        """End the session, stop chromedriver (and with it chromium), remove the profile."""
        if self._session is not None:
            with contextlib.suppress(OSError, WebDriverError):
                self._call("DELETE", f"/session/{self._session}")
            self._session = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
            self._process = None
        shutil.rmtree(self._profile, ignore_errors=True)

    def _wait_for_driver(self) -> None:
        deadline = time.monotonic() + START_S
        while True:
            try:
                if self._call("GET", "/status").get("ready"):
                    return
            except OSError:
                pass
            if self._process is not None and self._process.poll() is not None:
                raise WebDriverError(f"chromedriver exited with {self._process.returncode}")
            if time.monotonic() > deadline:
                raise WebDriverError(f"chromedriver did not answer on port {self._port} within {START_S:.0f} s")
            time.sleep(0.2)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        url = f"http://127.0.0.1:{self._port}{path}"
        request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = json.loads(exc.read() or b"{}").get("value", {})
            raise WebDriverError(f"{method} {path}: {detail.get('error')}: {detail.get('message')}") from None
        return answer.get("value")
