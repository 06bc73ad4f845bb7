"""Real worker processes on the local stack, for integration tests and benchmarks.

`ServiceHarness` gives a run fresh topics and a fresh consumer group, starts ``stream-app worker``
replicas as subprocesses (exactly what an operator runs), waits until they are ready, and can stop,
kill (-9) or restart any of them. Nothing is mocked: chunks go through the broker, state through
RocksDB and changelogs, text through the model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from stream_app.clients.kafka_config import consumer_config, producer_config
from stream_app.clients.kafka_probe import check_kafka_access
from stream_app.clients.publisher import ChunkPublisher, DeliveryLimits
from stream_app.clients.tail import TranscriptTail
from stream_app.clients.transcript import FinalTranscript, TranscriptAssembler
from stream_app.config import Settings
from stream_app.config.loader import CONFIG_ENV, ENV_PREFIX
from stream_app.local import delete_topics, ensure_topics
from stream_app.testing.settings_file import write_settings
from stream_app.wire.segment import TranscriptSegment

KAFKA_CHECK_S = 10.0  # how long a harness waits for the configured Kafka to answer before it gives up


def free_port() -> int:
    """Ask the OS for a free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Replica:
    """One worker process."""

    name: str
    web_port: int
    metrics_port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def ready(self) -> bool:
        """Whether its /readyz answers 200."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def metrics(self) -> str:
        """Its Prometheus exposition text."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return str(response.read().decode())


@dataclass
class ServiceHarness:
    """A private deployment of the service: topics, group, replicas, publisher and reader."""

    settings: Settings
    env: Mapping[str, str] = field(default_factory=dict)
    partitions: int | None = None
    keep_topics: bool = False
    replicas: dict[str, Replica] = field(default_factory=dict)

    def __post_init__(self) -> None:
        run = uuid.uuid4().hex[:10]
        kafka = self.settings.kafka
        self.topics = {
            "input_topic": f"h-{run}-chunks",
            "output_topic": f"h-{run}-transcripts",
            "dlq_topic": f"h-{run}-dlq",
            "control_topic": f"h-{run}-control",
        }
        self.group_id = f"h-{run}"
        self.partitions = self.partitions or kafka.partitions
        self.workdir = Path(tempfile.mkdtemp(prefix=f"stream-app-{run}-"))
        self.settings = dataclasses.replace(
            self.settings,
            kafka=dataclasses.replace(
                kafka,
                group_id=self.group_id,
                partitions=self.partitions,
                input_topic=self.topics["input_topic"],
                output_topic=self.topics["output_topic"],
                dlq_topic=self.topics["dlq_topic"],
                control_topic=self.topics["control_topic"],
            ),
            worker=dataclasses.replace(self.settings.worker, data_dir=str(self.workdir / "state")),
            caching=dataclasses.replace(self.settings.caching, l2_path=str(self.workdir / "l2")),
        )
        # The replicas run the configuration this harness was given, not the defaults: a benchmark
        # started with STREAM_APP_OPTIMIZATION__DEVICE=cuda (or -c gpu.toml) gets GPU workers.
        self.config_path = write_settings(self.settings, self.workdir / "worker.toml")

    # ---- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> ServiceHarness:
        check_kafka_access(self.settings.kafka, timeout=KAFKA_CHECK_S)  # KafkaAccessError: says where and why
        ensure_topics(self.settings)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop every replica, delete the run's topics and its folder (state, logs, settings file)."""
        for replica in list(self.replicas.values()):
            self.stop(replica.name)
        if not self.keep_topics:
            with contextlib.suppress(Exception):
                delete_topics(self.settings, list(self.topics.values()))
            shutil.rmtree(self.workdir, ignore_errors=True)

    def worker_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Return the environment a replica runs with.

        The harness's settings come from the file ``config_path`` (``STREAM_APP_CONFIG``); this
        process's own ``STREAM_APP_*`` variables are not passed on, since they are already part of
        those settings. On top come this run's topics, group and state folders, then ``env`` given
        to the harness, then ``extra``.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        kafka = self.settings.kafka
        env.update(
            {
                CONFIG_ENV: str(self.config_path),
                "STREAM_APP_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
                "STREAM_APP_KAFKA__GROUP_ID": self.group_id,
                "STREAM_APP_KAFKA__PARTITIONS": str(self.partitions),
                "STREAM_APP_WORKER__DATA_DIR": str(self.workdir / "state"),
                "STREAM_APP_CACHING__L2_PATH": str(self.workdir / "l2"),
                **{f"STREAM_APP_KAFKA__{k.upper()}": v for k, v in self.topics.items()},
            }
        )
        env.update(self.env)
        env.update(extra or {})
        return env

    def start(
        self,
        name: str = "r1",
        *,
        wait: float = 120.0,
        env: Mapping[str, str] | None = None,
        cpus: str | None = None,
    ) -> Replica:
        """Start (or restart) replica ``name`` and wait until it is ready (model loaded, partitions owned)."""
        replica = self.replicas.get(name)
        if replica is None:
            replica = Replica(name, free_port(), free_port(), self.workdir / f"{name}.log")
            self.replicas[name] = replica
        command = [sys.executable, "-m", "stream_app.cli.main", "worker", "--replica", name]
        command += ["--web-port", str(replica.web_port), "--metrics-port", str(replica.metrics_port)]
        if cpus:
            command = ["taskset", "-c", cpus, *command]
        log = replica.log_path.open("ab")
        replica.process = subprocess.Popen(
            command, env=self.worker_env(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        if wait:
            self.wait_ready(name, wait)
        return replica

    def wait_ready(self, name: str, timeout: float = 120.0) -> None:
        """Wait until replica ``name`` reports ready; raise with its log's tail otherwise."""
        replica = self.replicas[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not replica.running:
                raise RuntimeError(f"replica {name} exited:\n{self.log_tail(name)}")
            if replica.ready():
                return
            time.sleep(0.5)
        raise TimeoutError(f"replica {name} not ready after {timeout:.0f} s:\n{self.log_tail(name)}")

    def stop(self, name: str, *, kill: bool = False, timeout: float = 30.0) -> None:
        """Stop replica ``name``: SIGTERM (a clean shutdown) or, with ``kill``, SIGKILL (a crash)."""
        replica = self.replicas[name]
        if not replica.running or replica.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(replica.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            replica.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(replica.process.pid, signal.SIGKILL)
            replica.process.wait(10)

    def log_tail(self, name: str, lines: int = 40) -> str:
        """Return the last lines of a replica's log."""
        path = self.replicas[name].log_path
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # ---- traffic --------------------------------------------------------------------------------

    def publisher(self) -> ChunkPublisher:
        """Open a publisher (recorder) on this run's input topic, with the ``[publisher]`` delivery limits."""
        return ChunkPublisher(
            producer_config(self.settings.kafka),
            self.settings.kafka.input_topic,
            limits=DeliveryLimits.from_settings(self.settings.publisher),
        )

    def tail(self, *, from_beginning: bool = True, stream_id: str | None = None) -> TranscriptTail:
        """Open a reader of this run's output topic."""
        return TranscriptTail(
            consumer_config(self.settings.kafka),
            self.settings.kafka.output_topic,
            stream_id=stream_id,
            from_beginning=from_beginning,
        )

    def collect(self, stream_ids: list[str], *, timeout: float) -> dict[str, Collected]:
        """Read the output topic until every stream's end-of-stream segment arrived (or ``timeout``)."""
        assemblers = {sid: TranscriptAssembler(sid) for sid in stream_ids}
        raw: dict[str, list[TranscriptSegment]] = {sid: [] for sid in stream_ids}
        deadline = time.monotonic() + timeout
        with self.tail() as tail:
            for segment in tail.segments(timeout=timeout):
                if segment.stream_id in assemblers:
                    assemblers[segment.stream_id].add(segment)
                    raw[segment.stream_id].append(segment)
                if all(a.ended for a in assemblers.values()) or time.monotonic() > deadline:
                    break
        return {sid: Collected(assemblers[sid].result(), raw[sid]) for sid in stream_ids}

    def dead_letters(self, *, timeout: float = 10.0, expect: int | None = None) -> list[DeadLetter]:
        """Read this run's dead-letter topic: ``(value, headers)`` per record."""
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(consumer_config(self.settings.kafka))
        topic = self.settings.kafka.dlq_topic
        try:
            consumer.assign([TopicPartition(topic, p, -2) for p in range(self.partitions or 1)])
            out: list[DeadLetter] = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and (expect is None or len(out) < expect):
                message = consumer.poll(0.5)
                if message is None or message.error():
                    continue
                headers = {str(name): _as_bytes(value) for name, value in list(message.headers() or [])}
                out.append(DeadLetter(message.key(), message.value(), headers))
            return out
        finally:
            consumer.close()


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    return b"" if value is None else str(value).encode()


@dataclass(frozen=True)
class DeadLetter:
    """One record of the dead-letter topic."""

    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]

    @property
    def reason(self) -> str:
        """The ``dlq_reason`` header."""
        return self.headers.get("dlq_reason", b"").decode()


@dataclass(frozen=True)
class Collected:
    """What the output topic held for one stream: the assembled transcript and every raw segment."""

    transcript: FinalTranscript
    segments: list[TranscriptSegment]

    def finals(self) -> list[TranscriptSegment]:
        """Return the final segments in index order, one per id."""
        seen: dict[str, TranscriptSegment] = {}
        for segment in self.segments:
            if segment.is_final:
                seen.setdefault(segment.segment_id, segment)
        return sorted(seen.values(), key=lambda s: s.index)


@contextlib.contextmanager
def running_service(settings: Settings, replicas: int = 1, **kwargs: object) -> Iterator[ServiceHarness]:
    """Start ``replicas`` workers on fresh topics, yield the harness, stop everything."""
    with ServiceHarness(settings, **kwargs) as harness:  # type: ignore[arg-type]
        for index in range(replicas):
            harness.start(f"r{index + 1}", wait=0)
        for name in harness.replicas:
            harness.wait_ready(name)
        yield harness
