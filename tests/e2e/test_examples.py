"""The programs of docs/streaming-api.md run for real: recorders and consumers in Python and in Java.

One worker replica on fresh topics (`ServiceHarness`, 2 partitions); every example runs as its own
process, exactly as the guide tells a user to run it. The Python examples read the harness's
configuration file (``STREAM_APP_CONFIG``); the Java ones get the broker and topics as options and the
kafka-clients jar the local stack fetched (``java -cp '<libs>/*' File.java``, no build step). CI
installs Java (scripts/setup.sh) and fetches the jars (`stream-app local up`): when either is missing
the Java test fails and says which.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from confluent_kafka import Producer

from stream_app.audio.files import read_native_audio
from stream_app.audio.pcm import float_to_pcm
from stream_app.clients.chunking import prepare_audio
from stream_app.clients.kafka_config import producer_config
from stream_app.config import Settings
from stream_app.local import LocalStack, StackLayout
from stream_app.testing.service import ServiceHarness
from stream_app.testing.wer import word_error_rate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PY_RECORDER = EXAMPLES / "python" / "recorder.py"
PY_CONSUMER = EXAMPLES / "python" / "consumer.py"
PY_DEAD_LETTERS = EXAMPLES / "python" / "dead_letters.py"
JAVA_RECORDER = EXAMPLES / "java" / "Recorder.java"
JAVA_CONSUMER = EXAMPLES / "java" / "TranscriptConsumer.java"
MAX_WER = 0.10


@pytest.fixture(scope="module")
def service(settings: Settings, local_stack: LocalStack) -> Iterator[ServiceHarness]:
    """One worker on fresh topics, shared by the tests of this module."""
    with ServiceHarness(settings, partitions=2) as harness:
        harness.start("r1")
        yield harness


class Background:
    """A process started now whose stderr is watched for the line saying it listens."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.command = list(command)
        self.process = subprocess.Popen(
            self.command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.stderr: list[str] = []
        self.listening = threading.Event()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)
            if line.startswith("listening to "):
                self.listening.set()

    def wait_listening(self, timeout: float) -> None:
        """Block until the consumer has resolved its start offsets (nothing published later is missed)."""
        deadline = time.monotonic() + timeout
        while not self.listening.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"{self.command[:3]} did not start listening:\n{''.join(self.stderr)[-3000:]}")

    def finish(self, timeout: float) -> tuple[int, str, str]:
        """Wait for the exit; return the status, stdout and stderr."""
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        self._reader.join(5)
        return self.process.returncode, out, "".join(self.stderr)


def run(command: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 120) -> str:
    """Run a program to its end, fail the test with its output unless it exits 0; return its stdout."""
    result = subprocess.run(list(command), env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{command[:3]} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def transcript_of(stdout: str) -> str:
    """Return the text of the ``transcript: ...`` line both consumers print at the end of the stream."""
    lines = [line for line in stdout.splitlines() if line.startswith("transcript: ")]
    assert lines, stdout
    return lines[-1].removeprefix("transcript: ")


def test_python_recorder_and_consumer(service: ServiceHarness, jfk_path: Path, jfk_reference: str) -> None:
    env = service.worker_env()  # STREAM_APP_CONFIG: this run's broker and topics, as a user's -c FILE would be
    consumer = Background([sys.executable, str(PY_CONSUMER), "--stream-id", "py-jfk", "--timeout", "150"], env)
    consumer.wait_listening(60)
    sent = run([sys.executable, str(PY_RECORDER), str(jfk_path), "--stream-id", "py-jfk"], env)  # real time
    assert "published stream py-jfk: 110 chunks, 11.00 s of audio" in sent, sent
    status, out, err = consumer.finish(150)
    assert status == 0, out + err + service.log_tail("r1")
    assert "<end of stream>" in out and out.count("<end of stream>") == 1, out  # de-duplicated
    text = transcript_of(out)
    assert word_error_rate(jfk_reference, text) <= MAX_WER, text

    # the same file through the plain confluent-kafka client, read back from the topic's start
    recorder = [sys.executable, str(PY_RECORDER), str(jfk_path), "--stream-id", "py-raw"]
    run([*recorder, "--client", "confluent", "--fast"], env)
    out = run([sys.executable, str(PY_CONSUMER), "--stream-id", "py-raw", "--from-beginning", "--timeout", "120"], env)
    assert word_error_rate(jfk_reference, transcript_of(out)) <= MAX_WER, out


def test_dead_letters_lists_a_refused_chunk(service: ServiceHarness) -> None:
    producer = Producer(producer_config(service.settings.kafka))
    headers: list[tuple[str, str | bytes | None]] = [
        ("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"urn:test"), ("ce_type", b"t"),
    ]  # fmt: skip
    producer.produce(service.settings.kafka.input_topic, key=b"no-format", value=b"\0\0", headers=headers)
    assert producer.flush(30) == 0
    assert [d.reason for d in service.dead_letters(expect=1, timeout=60)] == ["missing_header"]
    out = run([sys.executable, str(PY_DEAD_LETTERS)], service.worker_env())
    assert "missing_header: missing content-type, ce_seq, ce_streamoffset  [stream 'no-format', from " in out, out


def kafka_client_classpath(settings: Settings) -> str:
    """Return ``<libs>/*`` of the local stack's Kafka jars; fail the test when java or kafka-clients is missing."""
    if shutil.which("java") is None:
        pytest.fail("java is not installed: the Java examples need Java 17 (scripts/setup.sh installs it)")
    modules = subprocess.run(["java", "--list-modules"], capture_output=True, text=True, check=False).stdout
    if "jdk.compiler@" not in modules:
        pytest.fail("this java has no jdk.compiler module: `java File.java` needs a JDK or Debian's openjdk-17 runtime")
    libs = StackLayout.from_settings(settings).kafka_libs
    if not sorted(libs.glob("kafka-clients-*.jar")):
        pytest.fail(f"no kafka-clients jar in {libs}: `stream-app local up` fetches the Kafka jars there")
    return f"{libs}/*"


def write_16k_mono(source: Path, wav: Path, raw: Path) -> None:
    """Convert ``source`` to 16 kHz mono s16le, as a WAV file and as headerless PCM."""
    frames, _ = prepare_audio(read_native_audio(source), "s16le16k", "s16le")
    pcm = float_to_pcm(frames, "s16le")
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(pcm)
    raw.write_bytes(pcm)


def test_java_recorder_and_consumer(
    service: ServiceHarness, settings: Settings, jfk_path: Path, jfk_reference: str, tmp_path: Path
) -> None:
    classpath = kafka_client_classpath(settings)
    kafka = service.settings.kafka
    broker = ["--bootstrap-servers", kafka.bootstrap_servers]
    wav, raw = tmp_path / "jfk16k.wav", tmp_path / "jfk16k.pcm"
    write_16k_mono(jfk_path, wav, raw)

    java = ["java", "-cp", classpath]
    consumer = [*java, str(JAVA_CONSUMER), *broker, "--topic", kafka.output_topic]
    recorder = [*java, str(JAVA_RECORDER), *broker, "--topic", kafka.input_topic]
    listener = Background([*consumer, "--stream-id", "java-jfk", "--timeout", "150"])
    listener.wait_listening(90)
    sent = run([*recorder, "--stream-id", "java-jfk", str(wav)])  # real time
    assert "published stream java-jfk: 110 chunks, 11.00 s of audio" in sent, sent
    status, out, err = listener.finish(150)
    assert status == 0, out + err + service.log_tail("r1")
    assert "<end of stream>" in out, out
    text = transcript_of(out)
    assert word_error_rate(jfk_reference, text) <= MAX_WER, text

    # headerless PCM (16 kHz mono s16le by default), sent as fast as the broker takes it
    run([*recorder, "--stream-id", "java-raw", "--fast", str(raw)])
    collected = service.collect(["java-raw"], timeout=120)["java-raw"]
    assert collected.transcript.complete, service.log_tail("r1")
    assert word_error_rate(jfk_reference, collected.transcript.text) <= MAX_WER, collected.transcript.text
