"""A benchmark that needs the configured Kafka says so in one line when there is none, before any work."""

from __future__ import annotations

import os
import subprocess
import sys
import time


def test_bench_throughput_without_a_broker_names_the_cause_and_the_command_that_provides_one() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_APP_")}
    env["STREAM_APP_KAFKA__BOOTSTRAP_SERVERS"] = "127.0.0.1:9"  # nothing listens there
    command = [sys.executable, "-m", "stream_app.cli.main", "bench", "throughput", "--only", "service,batch"]
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    assert "127.0.0.1:9" in output
    assert "stream-app local run -- stream-app bench throughput" in output
    assert time.monotonic() - started < 60  # before decoding anything
