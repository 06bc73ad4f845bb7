"""`stream-app demo`: the main job on the local stack, start to finish, as a new user first sees it.

Brings up the local Kafka and Redis (if not running), starts one worker replica, publishes the sample
recording in real time as a recorder would, prints the live transcript as segments arrive, and stops
the worker (the stack keeps running: chunks published later wait until `stream-app worker` reads
them). Nothing is simulated: the audio crosses the broker, the model runs, segments come back.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from stream_app.config import Settings

READY_TIMEOUT = 180.0


def register(subparsers: Any) -> None:
    """Add the `demo` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="local stack + one worker + the sample recording streamed live, transcript printed"
    )
    parser.add_argument("--file", type=Path, help="audio file to stream (default: the bundled jfk.flac)")
    parser.add_argument("--fast", action="store_true", help="publish as fast as possible, not in real time")
    parser.add_argument("--chunk-ms", type=float, default=100.0, help="chunk length the recorder sends")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from stream_app.clients.kafka_config import consumer_config, producer_config
    from stream_app.clients.publisher import ChunkPublisher
    from stream_app.clients.tail import TranscriptTail
    from stream_app.clients.transcript import TranscriptAssembler, format_segment_line
    from stream_app.local import LocalStack
    from stream_app.samples import JFK_FLAC

    audio_file = args.file or JFK_FLAC
    print(f"[demo] local stack: Kafka {settings.kafka.bootstrap_servers}, Redis on port {settings.local.redis_port}")
    LocalStack(settings).up()
    log_path = Path(settings.worker.data_dir).expanduser() / "demo-worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"[demo] starting a worker replica (log: {log_path})")
    worker = subprocess.Popen(
        [sys.executable, "-m", "stream_app.cli.main", *_config_args(args), "worker"],
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_ready(settings, worker, log_path)
        stream_id = f"demo-{uuid.uuid4().hex[:8]}"
        mode = "as fast as possible" if args.fast else "in real time"
        print(f"[demo] streaming {audio_file.name} as stream {stream_id} {mode}; live transcript:\n")
        tail = TranscriptTail(consumer_config(settings.kafka), settings.kafka.output_topic, stream_id=stream_id)
        errors: list[BaseException] = []

        def publish() -> None:
            try:
                with ChunkPublisher(producer_config(settings.kafka), settings.kafka.input_topic) as publisher:
                    publisher.publish_file(audio_file, stream_id, chunk_ms=args.chunk_ms, realtime=not args.fast)
            except BaseException as exc:  # reported below, after the tail stops
                errors.append(exc)

        recorder = threading.Thread(target=publish, name="demo-recorder", daemon=True)
        recorder.start()
        assembler = TranscriptAssembler(stream_id)
        with tail:
            for segment in tail.segments(timeout=args.timeout):
                print(format_segment_line(segment), flush=True)
                assembler.add(segment)
                if assembler.ended:
                    break
        recorder.join(timeout=30)
        if errors:
            print(f"[demo] publishing failed: {errors[0]}", file=sys.stderr)
            return 1
        result = assembler.result()
        print(f"\n[demo] final transcript: {result.text}")
        return 0 if result.complete else 1
    finally:
        _stop(worker)
        print(
            "[demo] the demo's worker stopped; the local stack keeps running (stream-app local down stops it). "
            "To transcribe more, run a worker: stream-app worker"
        )


def _stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is not None:
        return
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)


def _config_args(args: argparse.Namespace) -> list[str]:
    return ["--config", str(args.config)] if getattr(args, "config", None) else []


def _wait_ready(settings: Settings, worker: subprocess.Popen[bytes], log_path: Path) -> None:
    url = f"http://{settings.metrics.host}:{settings.metrics.port}/readyz"
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise SystemExit(f"[demo] the worker exited; see {log_path}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"[demo] the worker was not ready after {READY_TIMEOUT:.0f} s; see {log_path}")
