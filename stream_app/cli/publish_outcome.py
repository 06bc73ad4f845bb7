"""What `stream-app publish` says while and after it sends: progress, then what the workers did with the stream.

The broker acknowledges every chunk; whether the workers took them shows only later, on the dead-letter
topic (`RefusalWatch`) and in the group's committed offsets (`GroupProgress`). Publishing reports both,
so audio the workers refused (a stream id re-used right after its end, ...) no longer exits 0 unnoticed.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from stream_app.clients.group_progress import GroupProgress
from stream_app.clients.kafka_config import admin_config
from stream_app.clients.publisher import PublishReport
from stream_app.clients.refusals import Refusals, RefusalWatch
from stream_app.config import Settings

PROGRESS_EVERY_S = 5.0
SETTLE_S = 10.0  # reading the dead letters already on the topic once the workers are past the stream


def sent_span(report: PublishReport) -> dict[int, tuple[int, int]]:
    """Return the input offsets the stream's chunks got: partition -> (first, last); the key picks one partition."""
    if report.first_offset < 0 or not report.partitions:
        return {}
    return {partition: (report.first_offset, report.last_offset) for partition in report.partitions}


class ProgressLine:
    """Says every few seconds how much audio went out and what the workers refused so far (a long real-time send)."""

    def __init__(
        self,
        total_seconds: float | None,
        watch: RefusalWatch | None,
        *,
        every: float = PROGRESS_EVERY_S,
        out: TextIO | None = None,
    ) -> None:
        self._total = total_seconds
        self._watch = watch
        self._every = every
        self._out = out or sys.stderr
        self._next = time.monotonic() + every

    def __call__(self, report: PublishReport) -> None:
        """Take the report after a chunk went out; print when the interval has passed."""
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self._every
        of = f" of {self._total:.1f}" if self._total is not None else ""
        refused = self._watch.refusals(sent_span(report)).summary() if self._watch is not None else ""
        print(
            f"sent {report.audio_seconds:.1f}{of} s of {report.stream_id} ({report.chunks} chunks, "
            f"{report.acknowledged} acknowledged); refused by the workers so far: {refused or 'none'}",
            file=self._out,
            flush=True,
        )


def report_outcome(settings: Settings, report: PublishReport, watch: RefusalWatch, wait: float, topic: str) -> int:
    """Wait up to ``wait`` s for the workers to read the stream, say what they refused; return the exit status.

    1 when every chunk was refused; 0 otherwise (also when no worker read it in time: the chunks wait).
    """
    kafka = settings.kafka
    span = sent_span(report)
    progress = GroupProgress(admin_config(kafka), kafka.group_id)
    read = progress.wait_until_read(topic, {p: last for p, (_, last) in span.items()}, wait)
    watch.settle(SETTLE_S)
    refusals = watch.refusals(span)
    if not read.read:
        if read.members == 0:
            print(
                f"not read yet: no worker is in group {kafka.group_id!r} (start one: stream-app worker); "
                f"the chunks wait in {topic}",
                file=sys.stderr,
            )
        else:
            print(
                f"not read yet: the workers of group {kafka.group_id!r} did not reach the end of this stream within "
                f"{wait:g} s (they may be behind); refusals, if any, go to {kafka.dlq_topic}",
                file=sys.stderr,
            )
    return _say_refusals(refusals, report, kafka.dlq_topic, read.read)


def _say_refusals(refusals: Refusals, report: PublishReport, dlq_topic: str, read: bool) -> int:
    if refusals.windows:
        counts = ", ".join(f"{reason}: {n}" for reason, n in sorted(refusals.windows.items()))
        print(f"windows given up by the workers ({counts}): their spans are gaps in the transcript", file=sys.stderr)
    refused = refusals.refused_chunks
    if not refused:
        if read:
            print(f"read by the workers: none of the {report.chunks} chunks refused")
        return 0
    every = refused >= report.chunks
    print(
        f"stream-app publish: the workers refused {'all' if every else refused} of the {report.chunks} chunks of "
        f"{report.stream_id} ({refusals.summary()}); they went to {dlq_topic}",
        file=sys.stderr,
    )
    for line in refusals.advice():
        print(f"  {line}", file=sys.stderr)
    return 1 if every else 0
