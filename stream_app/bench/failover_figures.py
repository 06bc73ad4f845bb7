"""What `bench failover` reads back from a run's topics, and the figures it computes per event and phase."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stream_app.bench.report import percentile
from stream_app.bench.resume import Disruption, Published, final_lags_between, resume_times
from stream_app.bench.word_lag import PublishedSegment
from stream_app.testing.service import ServiceHarness
from stream_app.testing.topic_reader import TopicRecord, read_topic
from stream_app.testing.verifier import ChunkCensus, TopicOutput, census_chunks, group_segments
from stream_app.wire.exceptions import SegmentDecodeError
from stream_app.wire.segment_codec import decode_segment
from stream_app.worker.tables import EPOCH_HEADER

POLL_S = 10.0  # how often the drain re-reads the transcripts topic
NAN = float("nan")
SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Figures:
    """A run's transcripts (for the verifier), its segments' publish times and epochs, origins, census."""

    output: TopicOutput
    published: dict[str, list[Published]]
    segments: dict[str, list[PublishedSegment]]
    origins: dict[str, int]  # wall ms at which each stream's position 0 reached the broker
    census: ChunkCensus


def collect_figures(
    harness: ServiceHarness, ids: Sequence[str], expected: Mapping[str, int], *, timeout: float
) -> Figures:
    """Wait until every stream ended (or ``timeout``), then read both topics of the run."""
    kafka, topic = harness.settings.kafka, harness.topics["output_topic"]
    deadline = time.monotonic() + timeout
    while True:
        records = list(read_topic(kafka, topic, timeout=300))
        output = group_segments(records)
        ended = sum(1 for sid in ids if output.get(sid).complete)
        if ended == len(ids) or time.monotonic() >= deadline:
            print(f"[failover] {ended}/{len(ids)} streams ended")
            break
        time.sleep(POLL_S)
    published: dict[str, list[Published]] = {sid: [] for sid in ids}
    segments: dict[str, list[PublishedSegment]] = {sid: [] for sid in ids}
    for record in records:
        stream = (record.key or b"").decode(errors="replace")
        if stream not in published or not record.value:
            continue
        try:
            segment = decode_segment(record.value)
        except SegmentDecodeError:
            continue
        published[stream].append(Published(stream, record.timestamp_ms, _epoch(record)))
        segments[stream].append(PublishedSegment(segment, record.timestamp_ms))
    origins: dict[str, int] = {}
    inputs = read_topic(kafka, harness.topics["input_topic"], timeout=900)
    census = census_chunks(_noting_origins(inputs, origins), expected)
    return Figures(output, published, segments, origins, census)


def _epoch(record: TopicRecord) -> int:
    value = dict(record.headers).get(EPOCH_HEADER)
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _noting_origins(records: Iterator[TopicRecord], origins: dict[str, int]) -> Iterator[TopicRecord]:
    """Pass the input records on, noting when each stream's position 0 reached the broker."""
    for record in records:
        headers = dict(record.headers)
        if headers.get("ce_seq") == b"0":
            stream = (record.key or b"").decode(errors="replace")
            origins[stream] = record.timestamp_ms - int(headers.get("ce_streamoffset", b"0")) * 1000 // SAMPLE_RATE
        yield record


def event_row(
    figures: Figures, event: Disruption, settle: float, started: float, control: list[float]
) -> dict[str, Any]:
    """One row of the table: the event, the streams it touched, their resume times and final lags."""
    resumes = list(resume_times(figures.published, event).values())
    lags = final_lags_between(figures.segments, figures.origins, event.at, event.at + settle)
    return {
        "phase": event.phase,
        "event": event.kind,
        "target": event.target,
        "at_s": round(event.at - started, 1),
        "touched": len(resumes),
        "resume_p95_s": _r(percentile(resumes, 95)),
        "resume_max_s": _r(max(resumes, default=NAN)),
        "final_lag_p95_s": _r(percentile(lags, 95)),
        "control_p95_s": _r(percentile(control, 95)),
        "left_group_s": _r(NAN if event.left_group_s is None else event.left_group_s),
    }


def phase_summary(
    figures: Figures, events: Sequence[Disruption], phase: str, settle: float, control: list[float]
) -> dict[str, Any]:
    """Return the phase's figures: resume times pooled over its events, final lags until ``settle`` after the last."""
    if not events:
        return {f"{phase}_events": 0}
    resumes = [v for e in events for v in resume_times(figures.published, e).values()]
    lags = final_lags_between(figures.segments, figures.origins, events[0].at, events[-1].at + settle)
    return {
        f"{phase}_events": len(events),
        f"{phase}_touched": len(resumes),
        f"{phase}_resume_p95_s": _r(percentile(resumes, 95)),
        f"{phase}_resume_max_s": _r(max(resumes, default=NAN)),
        f"{phase}_final_lag_p95_s": _r(percentile(lags, 95)),
        f"{phase}_control_p95_s": _r(percentile(control, 95)),
        **_left_group(events, phase),
    }


def _left_group(events: Sequence[Disruption], phase: str) -> dict[str, Any]:
    """Return the slowest stop's time from its SIGTERM to its LeaveGroup answer (phases with stops only)."""
    stops = [e for e in events if e.kind in ("terminate", "remove")]
    if not stops:
        return {}
    left = [e.left_group_s for e in stops if e.left_group_s is not None]
    return {  # a stop that never left made the group wait for its session timeout
        f"{phase}_stop_left_group_max_s": _r(max(left, default=NAN)),
        f"{phase}_stops_not_leaving_group": len(stops) - len(left),
    }


def control_times(reference: Figures, event: Disruption, shift: float) -> list[float]:
    """Return every stream's time to its next segment at the same moment of the undisturbed run.

    ``shift`` maps the disturbed run's wall clock onto the reference run's (the difference of their
    starts; both publish the same scripts on the same schedule). This is the floor under the resume
    times: the segments' cadence (one per commit step or pause) and the machine's load.
    """
    at = event.at + shift
    moment = Disruption("control", "none", "-", at, event.until + shift, every_stream=True)
    return list(resume_times(reference.published, moment).values())


def _r(value: float) -> float | None:
    return None if value != value else round(value, 2)  # NaN: nothing to measure
