"""How long each disruption held a stream's transcript up, from what the transcripts topic holds (pure).

Every segment record names the owner epoch of the partition that published it (header
``stream-app-epoch``); a new owner, even the same replica restarted, has a higher epoch. For one
disruption (an event at wall time ``at``, lasting until the next one), per stream:

* A stream is **touched** when a segment of a higher epoch than its last one before ``at`` is published
  in the window (its partition changed owner), or when it published before ``at`` and nothing in the
  window (it never resumed: counted with the whole window as its resume time). A broker outage touches
  every stream that was publishing.
* Its **resume time** is, for the first change of owner, the time from the event until the new owner's
  first segment (``from_event``: kills and stops, whose moment is known), or until it from the stream's
  last segment before it (a replica that joins: the moment it joins the group is not visible from
  outside, so the stream's own silence is what is measured). A later change in the same window (the
  restarted replica taking partitions back) is measured the second way. The largest of these counts. For
  a broker outage it is the time from the broker answering again until the stream's next segment.

A stream that was silent (a pause in speech) when a disruption hit adds that silence: the scripts of
`bench failover` pause for at most ~1.2 s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stream_app.bench.word_lag import PublishedSegment, final_word_lags


@dataclass(frozen=True)
class Published:
    """One segment record as read back: its stream, broker timestamp (ms) and publisher's owner epoch."""

    stream_id: str
    at_ms: int
    epoch: int  # 0 when the record carries none


@dataclass(frozen=True)
class Disruption:
    """One event of the run; times are wall-clock seconds."""

    phase: str  # kill, rolling, scaling, broker
    kind: str  # kill, terminate, add, remove, broker
    target: str
    at: float  # when it hit (the broker: when it answered again)
    until: float  # the next event, or the end of the run
    from_event: bool = True  # the first change of owner is measured from ``at`` (else from the stream's silence)
    every_stream: bool = False  # every publishing stream is touched (the broker)
    left_group_s: float | None = None  # a stop: from the signal to the replica's LeaveGroup answer (its log)


def resume_times(published: Mapping[str, Sequence[Published]], event: Disruption) -> dict[str, float]:
    """Return each touched stream's resume time (seconds) for ``event`` (see the module docstring)."""
    out: dict[str, float] = {}
    start_ms, end_ms = int(event.at * 1000), int(event.until * 1000)
    for stream_id, items in published.items():
        ordered = sorted(items, key=lambda p: p.at_ms)
        before = [p for p in ordered if p.at_ms < start_ms]
        window = [p for p in ordered if start_ms <= p.at_ms < end_ms]
        if not before:
            continue  # not live yet when it hit
        if not window:
            out[stream_id] = event.until - event.at  # never resumed within the window
            continue
        if event.every_stream:
            out[stream_id] = (window[0].at_ms - start_ms) / 1000
            continue
        waits = _owner_changes(before[-1], window, start_ms if event.from_event else None)
        if waits:
            out[stream_id] = max(waits)
    return out


def _owner_changes(last_before: Published, window: Sequence[Published], start_ms: int | None) -> list[float]:
    """Seconds the stream waited at each change to a higher epoch within the window."""
    waits: list[float] = []
    epoch, previous = last_before.epoch, last_before.at_ms
    for item in window:
        if item.epoch > epoch:
            since = start_ms if (start_ms is not None and not waits) else previous
            waits.append(max(0.0, (item.at_ms - since) / 1000))
            epoch = item.epoch
        previous = item.at_ms
    return waits


def final_lags_between(
    segments: Mapping[str, Sequence[PublishedSegment]], origins: Mapping[str, int], start: float, end: float
) -> list[float]:
    """Return the final lags (s) of the words whose final segment was published in ``[start, end)`` (wall s)."""
    lags: list[float] = []
    for stream_id, items in segments.items():
        origin = origins.get(stream_id)
        if origin is None:
            continue
        lags += [lag for at_ms, lag in final_word_lags(items, origin) if start * 1000 <= at_ms < end * 1000]
    return lags
