"""`stream-app tail` on a real topic holding replays of two streams, as after a worker failover."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

from stream_app.config import Settings
from stream_app.testing.segments import make_segment, produce_segments
from stream_app.wire.segment import Gap

STREAM_APP = [sys.executable, "-m", "stream_app.cli.main"]


def _tail(settings: Settings, topic: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_APP_")}
    env["STREAM_APP_KAFKA__BOOTSTRAP_SERVERS"] = settings.kafka.bootstrap_servers
    command = [*STREAM_APP, "tail", "--topic", topic, "--from-beginning", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_replays_of_every_stream_print_once_with_ids_and_gaps(
    settings: Settings, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("tail", partitions=2)
    gap = Gap(4.2, 5.0, "lost_chunks", "seq 42-49 never arrived")
    first_run = [
        make_segment("a", 0, "And so", final=False, revision=0, timed=True),
        make_segment("b", 0, "Ask", final=False, revision=0, timed=True),
        make_segment("a", 0, "And so my fellow Americans.", revision=1, timed=True),
        make_segment("b", 0, "Ask not.", revision=1, timed=True),
        make_segment("a", 1, "ask not", revision=0, timed=True, gaps=(gap,), eos=True),
    ]
    replay = first_run[:4]  # a restarted worker publishes the same ids again
    produce_segments(settings.kafka, topic, [*first_run, *replay])

    result = _tail(settings, topic, "--timeout", "8")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sorted(lines) == sorted(
        [
            "a:0 [    0.00 -     3.50] ~ And so  (interim r0)",
            "b:0 [    0.00 -     3.50] ~ Ask  (interim r0)",
            "a:0 [    0.00 -     3.50] And so my fellow Americans.",
            "b:0 [    0.00 -     3.50] Ask not.",
            "a:1 [    4.00 -     7.50] ask not  <lost_chunks: 4.20-5.00 s not transcribed>  <end of stream>",
        ]
    )

    vtt = _tail(settings, topic, "--stream-id", "a", "--format", "vtt", "--until-end-of-stream", "--timeout", "30")
    assert vtt.returncode == 0, vtt.stderr
    assert vtt.stdout.startswith("WEBVTT\n\n00:00:00.000 --> ")
    assert vtt.stdout.count("-->") == 2 and "And so my fellow Americans." in vtt.stdout
    assert "final transcript" not in vtt.stdout  # subtitles only: the file stays valid WebVTT
