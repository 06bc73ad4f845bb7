"""`stream-app publish -`: audio from a pipe (raw PCM, WAV as arecord writes it, any container), sent as it arrives."""

from __future__ import annotations

import dataclasses
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile

from stream_app.audio.files import decode_audio_file, read_native_audio
from stream_app.audio.pcm import float_to_pcm
from stream_app.config import Settings
from stream_app.testing.topic_reader import TopicRecord, read_topic
from stream_app.wire.chunk_codec import decode_chunk

STREAM_APP = [sys.executable, "-m", "stream_app.cli.main"]


@pytest.fixture
def chunks_settings(settings: Settings, new_topic: Callable[..., str]) -> Settings:
    return dataclasses.replace(settings, kafka=dataclasses.replace(settings.kafka, input_topic=new_topic("stdin")))


def _command(settings: Settings, stream_id: str, *extra: str) -> list[str]:
    topic = settings.kafka.input_topic
    return [*STREAM_APP, "publish", "-", "--stream-id", stream_id, "--topic", topic, "--confirm", "0", *extra]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("STREAM_APP_")}


def _publish(settings: Settings, stream_id: str, data: bytes, *extra: str) -> subprocess.CompletedProcess[bytes]:
    command = _command(settings, stream_id, *extra)
    return subprocess.run(command, input=data, env=_env(), capture_output=True, timeout=120, check=False)


def _records(settings: Settings, stream_id: str) -> list[TopicRecord]:
    records = [r for r in read_topic(settings.kafka, settings.kafka.input_topic) if r.key == stream_id.encode()]
    return sorted(records, key=lambda r: r.offset)


def _assert_one_ordered_stream(records: list[TopicRecord]) -> None:
    chunks = [decode_chunk(r.key, r.value, list(r.headers), max_bytes=1 << 20) for r in records]
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    assert [c.end_of_stream for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert len({r.partition for r in records}) == 1


def _jfk16k_s16(jfk_path: Path) -> bytes:
    return float_to_pcm(decode_audio_file(jfk_path).reshape(-1, 1), "s16le")


def test_raw_pcm_goes_out_byte_for_byte(chunks_settings: Settings, jfk_path: Path) -> None:
    pcm = _jfk16k_s16(jfk_path)
    done = _publish(chunks_settings, "raw-in", pcm, "--pcm", "s16le", "--rate", "16000", "--channels", "1")
    assert done.returncode == 0, done.stderr.decode()
    records = _records(chunks_settings, "raw-in")
    _assert_one_ordered_stream(records)
    # 11 s in 110 full chunks of 100 ms; the pipe's end is known only after the last: an empty end-of-stream chunk
    assert len(records) == 111 and records[-1].value == b""
    assert b"".join(r.value or b"" for r in records) == pcm
    assert dict(records[0].headers)["content-type"] == b"audio/pcm; encoding=s16le; rate=16000; channels=1"


def test_wav_from_a_recorder_is_sent_as_its_pcm(chunks_settings: Settings, jfk_path: Path) -> None:
    pcm = _jfk16k_s16(jfk_path)
    wav = io.BytesIO()
    soundfile.write(wav, np.frombuffer(pcm, dtype="<i2"), 16_000, format="WAV", subtype="PCM_16")
    done = _publish(chunks_settings, "wav-in", wav.getvalue())
    assert done.returncode == 0, done.stderr.decode()
    records = _records(chunks_settings, "wav-in")
    _assert_one_ordered_stream(records)
    assert b"".join(r.value or b"" for r in records) == pcm


def test_a_compressed_container_is_decoded_at_its_own_rate(chunks_settings: Settings, jfk_path: Path) -> None:
    done = _publish(chunks_settings, "flac-in", jfk_path.read_bytes())
    assert done.returncode == 0, done.stderr.decode()
    records = _records(chunks_settings, "flac-in")
    _assert_one_ordered_stream(records)
    assert dict(records[0].headers)["content-type"] == b"audio/pcm; encoding=s16le; rate=44100; channels=2"
    sent = np.frombuffer(b"".join(r.value or b"" for r in records), dtype="<i2").reshape(-1, 2)
    expected = np.frombuffer(float_to_pcm(read_native_audio(jfk_path).frames, "s16le"), dtype="<i2").reshape(-1, 2)
    assert np.array_equal(sent, expected)  # FLAC is lossless: the same samples as reading the file


def test_a_live_pipe_is_sent_as_it_arrives_and_ctrl_c_ends_the_stream(
    chunks_settings: Settings, jfk_path: Path
) -> None:
    pcm = _jfk16k_s16(jfk_path)
    command = _command(chunks_settings, "live-in", "--pcm", "s16le")
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    process = subprocess.Popen(command, env=_env(), **pipes)
    assert process.stdin is not None
    try:
        process.stdin.write(pcm[:32_000])  # one second; the pipe stays open, as a microphone's does
        process.stdin.flush()
        deadline = time.monotonic() + 60
        while len(_records(chunks_settings, "live-in")) < 10:  # on the broker before the input ends
            assert time.monotonic() < deadline, "the first second was not sent while the pipe stayed open"
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err.decode()
    assert b"interrupted: ending the stream" in err
    records = _records(chunks_settings, "live-in")
    _assert_one_ordered_stream(records)  # ended with an end-of-stream chunk
    assert b"".join(r.value or b"" for r in records) == pcm[:32_000]


def test_a_wav_of_another_sample_format_is_decoded(chunks_settings: Settings, jfk_path: Path) -> None:
    wav = io.BytesIO()
    soundfile.write(wav, decode_audio_file(jfk_path), 16_000, format="WAV", subtype="PCM_24")
    done = _publish(chunks_settings, "wav24-in", wav.getvalue())
    assert done.returncode == 0, done.stderr.decode()
    records = _records(chunks_settings, "wav24-in")
    _assert_one_ordered_stream(records)
    assert dict(records[0].headers)["content-type"] == b"audio/pcm; encoding=s16le; rate=16000; channels=1"
    assert sum(len(r.value or b"") for r in records) == 2 * 176_000
