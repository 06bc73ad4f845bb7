"""Ctrl-C ends a live input whether it arrives while reading the pipe or while sending a block."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from stream_app.cli.live_interrupt import LiveInterrupt


def _ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)  # handled synchronously on the main thread before the next line


def _pipe(blocks: list[bytes], interrupt_on_read: int | None = None) -> Iterator[bytes]:
    for index, block in enumerate(blocks):
        if index == interrupt_on_read:
            _ctrl_c()  # as if os.read was blocked when the user pressed Ctrl-C
        yield block


def test_ctrl_c_while_a_block_is_being_sent_ends_the_input_after_that_block(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sent: list[bytes] = []
    pulled: list[bytes] = []

    def source() -> Iterator[bytes]:
        for block in (b"a", b"b", b"c"):
            pulled.append(block)
            yield block

    with LiveInterrupt() as interrupt:
        for block in interrupt.until_interrupted(source()):
            sent.append(block)
            if block == b"a":
                _ctrl_c()  # the publisher is producing "a" when it arrives: no exception here
    assert sent == [b"a"]
    assert pulled == [b"a"]  # the pipe is not read again
    assert "interrupted: ending the stream" in capsys.readouterr().err


def test_ctrl_c_while_waiting_for_the_pipe_ends_the_input_with_what_was_sent() -> None:
    with LiveInterrupt() as interrupt:
        sent = list(interrupt.until_interrupted(_pipe([b"a", b"b", b"c"], interrupt_on_read=2)))
    assert sent == [b"a", b"b"]
    assert interrupt.requested


def test_a_closed_pipe_ends_the_input_without_saying_interrupted(capsys: pytest.CaptureFixture[str]) -> None:
    with LiveInterrupt() as interrupt:
        assert list(interrupt.until_interrupted(_pipe([b"a", b"b"]))) == [b"a", b"b"]
    assert not interrupt.requested
    assert "interrupted" not in capsys.readouterr().err


def test_a_second_ctrl_c_interrupts_at_once_and_the_handler_is_restored_after() -> None:
    before = signal.getsignal(signal.SIGINT)
    with LiveInterrupt() as interrupt, pytest.raises(KeyboardInterrupt):
        for _ in interrupt.until_interrupted(_pipe([b"a", b"b"])):
            _ctrl_c()
            _ctrl_c()  # still sending the first block: the user insists
    assert signal.getsignal(signal.SIGINT) is before
