"""Cutting a pipe's PCM into chunks as it arrives: any block sizes, exact bytes, one end of stream."""

from __future__ import annotations

import struct

import pytest

from stream_app.audio.wav_header import is_wav, parse_format
from stream_app.clients.chunking import chunk_pcm_stream
from stream_app.wire.chunk import ChunkFormat

FMT = ChunkFormat("s16le", 16_000, 2)  # 4-byte frames, 100 ms = 6,400 bytes


@pytest.mark.parametrize("block", [1, 3, 4096, 6_400, 10_000])
def test_blocks_of_any_size_make_the_same_chunks(block: int) -> None:
    data = bytes(range(256)) * 100 + b"\x01\x02\x03"  # 25,603 bytes: 4 full chunks, 1 frame and a torn one
    chunks = list(chunk_pcm_stream((data[i : i + block] for i in range(0, len(data), block)), FMT, 100.0))
    assert [c.seq for c in chunks] == [0, 1, 2, 3, 4]
    assert [c.offset for c in chunks] == [0, 1600, 3200, 4800, 6400]
    assert [c.end_of_stream for c in chunks] == [False] * 4 + [True]
    assert b"".join(c.pcm for c in chunks) == data[:25_600]  # the torn last frame is not sent
    assert chunks[-1].pcm == data[25_600:25_600] and chunks[-1].duration == 0.0


def test_a_pipe_closed_at_once_still_ends_its_stream() -> None:
    (only,) = chunk_pcm_stream(iter(()), FMT, 100.0)
    assert (only.seq, only.pcm, only.end_of_stream) == (0, b"", True)


def test_a_wav_header_names_what_can_be_sent_as_is() -> None:
    head = b"RIFF\xff\xff\xff\x7fWAVE"
    assert is_wav(head) and not is_wav(b"fLaC\0\0\0\x22abcd")
    pcm16 = struct.pack("<HHIIHH", 1, 1, 16_000, 32_000, 2, 16)
    assert parse_format(pcm16) == parse_format(pcm16 + b"\0\0")
    assert (parse_format(pcm16).encoding, parse_format(pcm16).sample_rate) == ("s16le", 16_000)
    assert parse_format(struct.pack("<HHIIHH", 3, 2, 48_000, 384_000, 8, 32)).encoding == "f32le"
    assert parse_format(struct.pack("<HHIIHH", 1, 1, 8_000, 24_000, 3, 24)).encoding is None  # 24-bit: decoded
