"""`stream-app bench failover`: how long each kind of failure holds live transcripts up.

Everything runs on a private stack (its own Kafka and Redis on free ports, removed afterwards). Two
runs of the same speech (``--streams`` distinct scripts published in real time, one recorder each):

1. **Reference**: the same replicas, undisturbed, cache off, paced the same way; the time to each
   stream's next segment at each event's moment of this run is the *control*: the floor under the
   resume times that the segments' cadence and the machine's load set.
2. **Disturbed**: ``--replicas`` replicas and, in turn, each followed by ``--settle`` seconds:
   (a) ``kill``: SIGKILL of the replica holding the most streams, restarted ``--restart-after`` s later;
   (b) ``rolling``: SIGTERM of one replica and its restart, then a rolling restart of every replica,
   one after another (each back and ready before the next);
   (c) ``scaling``: a replica added, then one removed (SIGTERM, as KEDA's scale-in does);
   (d) ``broker``: the broker stopped for ``--broker-outage`` seconds.

Per event and per phase: ``resume_p95_s`` / ``resume_max_s`` over the streams it touched
(`stream_app.bench.resume` defines both from the segments' publish times and owner epochs),
``final_lag_p95_s`` over the words made final in the ``--settle`` seconds after it, and for the whole
run the verifier's missing and conflicting finals against the reference (`stream_app.testing.verifier`).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream_app.bench.common import BENCH_HOME, add_skip_missed_ticks
from stream_app.bench.failover_figures import Figures, collect_figures, control_times, event_row, phase_summary
from stream_app.bench.report import emit
from stream_app.bench.resume import Disruption
from stream_app.config import Settings
from stream_app.testing.disruptions import Disruptor, close_windows
from stream_app.testing.private_stack import PrivateStack
from stream_app.testing.recorders import RecorderFleet
from stream_app.testing.service import ServiceHarness
from stream_app.testing.speech_streams import SpeechScript, UtteranceLibrary, plan_scripts, voice_utterances
from stream_app.testing.verifier import verify

PHASES = ("kill", "rolling", "scaling", "broker")
GOALS = (
    "kill_resume_p95_s <= 8, kill_resume_max_s <= 15, kill_final_lag_p95_s <= 12, rolling_resume_max_s <= 3, "
    "scaling_resume_max_s <= 3, broker_resume_max_s <= 10, missing_final_segments == 0, conflicting_final_ids == 0"
)
CACHE_OFF = {"STREAM_APP_CACHING__CACHE_LEVELS": "[]"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the failover benchmark."""
    parser.add_argument("--streams", type=int, default=12, help="concurrent real-time streams (12)")
    parser.add_argument("--replicas", type=int, default=3, help="worker replicas of the disturbed run (3)")
    parser.add_argument("--partitions", type=int, default=8, help="partitions of the run's topics (8)")
    parser.add_argument("--minutes", type=float, default=9.0, help="audio per stream; must outlast the phases (9)")
    parser.add_argument("--chunk-ms", type=float, default=200.0, help="audio per chunk (200 ms)")
    parser.add_argument("--phases", default=",".join(PHASES), help="which phases, in this order (all)")
    parser.add_argument("--warmup", type=float, default=30.0, help="streams flowing before the first event (s)")
    parser.add_argument("--settle", type=float, default=60.0, help="after each phase; the final-lag window (s)")
    parser.add_argument("--restart-after", type=float, default=5.0, help="a killed replica restarts after (s)")
    parser.add_argument("--broker-outage", type=float, default=20.0, help="the broker is stopped this long (s)")
    parser.add_argument("--commit-step", type=float, default=1.0, help="streaming.commit_step of both runs (1 s)")
    parser.add_argument("--previews", choices=("on", "off"), default="off", help="previews (off: finals only)")
    add_skip_missed_ticks(parser)
    parser.add_argument(
        "--reference-pace",
        choices=("realtime", "fast"),
        default="realtime",
        help="realtime (default): paced like the disturbed run, the control figures come from it; fast: "
        "as fast as it goes (streams longer than streaming.buffer_size then lose audio)",
    )
    parser.add_argument("--drain-timeout", type=float, default=900.0, help="wait for every stream's end (s)")
    parser.add_argument("--min-window", type=float, help="streaming.min_window of both runs (default: the setting)")
    parser.add_argument("--seed", type=int, default=18, help="speech scripts")
    parser.add_argument("--logs", type=Path, help="copy the disturbed run's replica logs into this folder")


@dataclass(frozen=True)
class Run:
    """One run of the service, as its topics hold it, with the events it went through."""

    figures: Figures
    events: list[Disruption]
    wall_s: float
    started: float  # wall clock


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the reference and the disturbed run on a private stack, then print the events and phases."""
    started = time.monotonic()
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        raise SystemExit(f"unknown phase {unknown[0]!r}; choose from {', '.join(PHASES)}")
    preview = settings.preview_step_seconds if args.previews == "on" else 0.0
    streaming = dataclasses.replace(
        settings.streaming,
        commit_step=args.commit_step,
        preview_step=preview,
        skip_missed_ticks=args.skip_missed_ticks == "on",
    )
    if args.min_window is not None:
        streaming = dataclasses.replace(streaming, min_window=args.min_window)
    settings = dataclasses.replace(settings, streaming=streaming)
    library = UtteranceLibrary(BENCH_HOME / "utterances")
    library.prepare(voice_utterances(args.streams))
    seconds = args.minutes * 60.0
    scripts = plan_scripts(args.streams, seconds, seed=args.seed, prefix="fo", length=library.seconds, long_pauses=0.0)
    expected = {s.stream_id: s.chunk_count(library, args.chunk_ms) for s in scripts}
    with PrivateStack(settings) as stack:
        print(f"[failover] private stack: Kafka {stack.settings.kafka.bootstrap_servers}")
        print(f"[failover] reference: {len(scripts)} streams, {args.replicas} replicas, {args.reference_pace}")
        reference = _run_service(stack, scripts, library, args, replicas=args.replicas, phases=[], expected=expected)
        print(f"[failover] disturbed: {args.replicas} replicas, phases {', '.join(phases)}")
        disturbed = _run_service(
            stack, scripts, library, args, replicas=args.replicas, phases=phases, expected=expected
        )
    ids = [s.stream_id for s in scripts]
    verdict = verify(reference.figures.output, disturbed.figures.output, ids)
    if args.logs is not None:
        _write_texts(args.logs, reference.figures, disturbed.figures, ids)
    differences = [v for v in verdict.streams if v.missing or v.extra]
    for v in differences[:10]:
        print(f"[failover] {v.stream_id}: reference has {list(v.missing)[:3]}, disturbed has {list(v.extra)[:3]}")
    shift = reference.started - disturbed.started
    controls = [control_times(reference.figures, e, shift) for e in disturbed.events]
    rows = [
        event_row(disturbed.figures, e, args.settle, disturbed.started, c)
        for e, c in zip(disturbed.events, controls, strict=True)
    ]
    summary: dict[str, Any] = {}
    for phase in phases:
        mine = [(e, c) for e, c in zip(disturbed.events, controls, strict=True) if e.phase == phase]
        pooled = [v for _, c in mine for v in c]
        summary.update(phase_summary(disturbed.figures, [e for e, _ in mine], phase, args.settle, pooled))
    worker = settings.worker
    summary.update(
        {
            "missing_final_segments": verdict.missing_final_segments,
            "conflicting_final_ids": verdict.conflicting_final_ids,
            "streams": len(ids),
            "streams_complete": verdict.streams_complete,
            "extra_final_segments": verdict.extra_final_segments,
            "wer_vs_reference_delta": round(verdict.wer_vs_reference, 5),
            "publisher_chunks_lost": disturbed.figures.census.lost,
            "events": len(disturbed.events),
            "replicas": args.replicas,
            "partitions": args.partitions,
            "session_timeout_s": worker.session_timeout,
            "heartbeat_interval_s": worker.heartbeat_interval,
            "standby_replicas": worker.standby_replicas,
            "static_membership": worker.static_membership,
            "drain_timeout_s": worker.drain_timeout,
            "commit_step_s": args.commit_step,
            "min_window_s": settings.streaming.min_window,
            "previews": args.previews,
            "skip_missed_ticks": args.skip_missed_ticks,
            "model": settings.optimization.model,
            "reference": f"same service undisturbed, {args.replicas} replicas, cache off, {args.reference_pace}",
            "disturbed_wall_s": round(disturbed.wall_s, 1),
            "wall_s": round(time.monotonic() - started, 1),
            "goals": GOALS,
        }
    )
    emit("failover: how long each failure holds live transcripts up", rows, summary, as_json=args.json)
    return 0


def _run_service(
    stack: PrivateStack,
    scripts: Sequence[SpeechScript],
    library: UtteranceLibrary,
    args: argparse.Namespace,
    *,
    replicas: int,
    phases: Sequence[str],
    expected: Mapping[str, int],
) -> Run:
    """Start replicas on fresh topics, publish every script, run the phases, wait for every stream's end."""
    realtime = bool(phases) or args.reference_pace == "realtime"
    with ServiceHarness(stack.settings, env=CACHE_OFF, partitions=args.partitions) as harness:
        for index in range(replicas):
            harness.start(f"r{index + 1}", wait=0)
        for name in list(harness.replicas):
            harness.wait_ready(name, timeout=300)
        fleet = RecorderFleet(harness.publisher, scripts, library, chunk_ms=args.chunk_ms, realtime=realtime)
        disruptor = Disruptor(harness, stack, report=print)
        started, wall = time.time(), time.monotonic()
        fleet.start()
        if phases:
            time.sleep(args.warmup)
            for phase in phases:
                if fleet.done:
                    print(f"[failover] the audio ended before phase {phase}: raise --minutes")
                    break
                _phase(phase, disruptor, args, replicas)
                time.sleep(args.settle)
        fleet.join()
        ids = [s.stream_id for s in scripts]
        figures = collect_figures(harness, ids, expected, timeout=args.drain_timeout)
        events = close_windows(disruptor.events, time.time())
        elapsed = time.monotonic() - wall
        if phases and args.logs is not None:
            args.logs.mkdir(parents=True, exist_ok=True)
            for replica in harness.replicas.values():
                shutil.copy(replica.log_path, args.logs / replica.log_path.name)
    shutil.rmtree(harness.workdir, ignore_errors=True)
    return Run(figures, events, elapsed, started)


def _write_texts(folder: Path, reference: Figures, disturbed: Figures, ids: Sequence[str]) -> None:
    """Write each run's final text per stream (one line each) beside the replica logs."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, figures in (("reference", reference), ("disturbed", disturbed)):
        lines = [f"{sid}\t{figures.output.get(sid).text()}" for sid in ids]
        (folder / f"finals-{name}.tsv").write_text("\n".join(lines) + "\n")


def _phase(phase: str, disruptor: Disruptor, args: argparse.Namespace, replicas: int) -> None:
    names = [f"r{i + 1}" for i in range(replicas)]
    if phase == "kill":
        disruptor.kill_and_restart(disruptor.busiest(), after=args.restart_after)
    elif phase == "rolling":
        disruptor.terminate(disruptor.busiest(), phase="rolling", restart=True)
        for name in names:  # a rolling upgrade: one replica after another, each ready before the next
            time.sleep(10.0)
            disruptor.terminate(name, phase="rolling", restart=True)
    elif phase == "scaling":
        added = f"r{replicas + 1}"
        disruptor.add(added)
        time.sleep(args.settle / 2)
        disruptor.terminate(added, phase="scaling", restart=False)  # scale-in removes the newest, as KEDA does
    elif phase == "broker":
        disruptor.broker_outage(args.broker_outage)
