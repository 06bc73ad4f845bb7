"""`stream-app bench chaos`: many live streams through replicas killed, a broker stopped and Redis restarted.

Kafka Streams' exactly-once system test, for this service. Everything runs on a private stack (its own
Kafka and Redis on free ports, removed afterwards), never on the shared one. Two runs of the same audio:

1. **Reference**: the same service, undisturbed (``--reference-replicas`` replicas, cache off so
   nothing is answered from an earlier run), the same streams paced the same way. A run of the real
   service, not an in-process re-implementation: the only difference between the two runs is the
   faults, so whatever the verifier finds was caused by them (or by the service not being
   deterministic, which is a finding too).
2. **Chaos**: ``--replicas`` replicas; ``--streams`` streams of distinct synthetic speech (espeak-ng
   voices, sentence orders and pauses), ``--minutes`` long each, published in real time by one recorder
   (`ChunkPublisher`) each; a SIGKILL of a random replica every 5-15 s (each restarted at once), one
   broker stop of ``--broker-outage`` seconds, one Redis restart. The faults stop when the audio ends;
   the run then waits for every stream's end-of-stream segment (``--drain-timeout``).

The verifier (`stream_app.testing.verifier`, whose docstring defines every key) then reads both whole
transcripts topics and the chaos run's input topic.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stream_app.bench.common import BENCH_HOME, add_skip_missed_ticks
from stream_app.bench.report import emit
from stream_app.bench.scrape import sample, scrape
from stream_app.config import Settings
from stream_app.testing.faults import FaultInjector, FaultPlan
from stream_app.testing.private_stack import PrivateStack
from stream_app.testing.recorders import RecorderFleet, RecorderResult
from stream_app.testing.service import ServiceHarness
from stream_app.testing.speech_streams import SpeechScript, UtteranceLibrary, plan_scripts, voice_utterances
from stream_app.testing.topic_reader import read_topic
from stream_app.testing.verifier import (
    ChunkCensus,
    TopicOutput,
    census_chunks,
    dead_letter_reasons,
    group_segments,
    verify,
)
from stream_app.testing.wer import corpus_wer

GOALS = (
    "streams >= 30, kills >= 10, broker_restarts >= 1, redis_restarts >= 1, streams_complete == streams, "
    "missing_final_segments == 0, conflicting_final_ids == 0, publisher_chunks_lost == 0, "
    "wer_vs_reference_delta <= 0.005, final_text_mismatches == 0, state_resets_undisturbed == 0"
)
CACHE_OFF = {"STREAM_APP_CACHING__CACHE_LEVELS": "[]"}
POLL_S = 10.0  # how often the drain re-reads the transcripts topic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the chaos benchmark."""
    parser.add_argument("--minutes", type=float, default=10.0, help="audio per stream, published in real time")
    parser.add_argument("--streams", type=int, default=30, help="concurrent streams of distinct speech (30)")
    parser.add_argument("--replicas", type=int, default=3, help="worker replicas of the chaos run (3)")
    parser.add_argument("--reference-replicas", type=int, default=1, help="replicas of the reference run (1)")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of the run's topics (6)")
    parser.add_argument("--chunk-ms", type=float, default=200.0, help="audio per chunk (200 ms)")
    parser.add_argument("--kill-min", type=float, default=5.0, help="shortest wait before the next SIGKILL (5 s)")
    parser.add_argument("--kill-max", type=float, default=15.0, help="longest wait before the next SIGKILL (15 s)")
    parser.add_argument("--max-kills", type=int, help="stop killing after this many (default: until the audio ends)")
    parser.add_argument("--broker-outage", type=float, default=25.0, help="broker stopped this long (s; 0 = none)")
    parser.add_argument("--broker-at", type=float, default=0.4, help="when, as a share of the run (0.4)")
    parser.add_argument("--redis-outage", type=float, default=3.0, help="Redis stopped this long (s; 0 = none)")
    parser.add_argument("--redis-at", type=float, default=0.7, help="when, as a share of the run (0.7)")
    parser.add_argument(
        "--reference-pace",
        choices=("realtime", "fast"),
        default="realtime",
        help="realtime: the reference is paced like the chaos run; fast: as fast as it goes",
    )
    parser.add_argument("--drain-timeout", type=float, default=1800.0, help="wait for every stream's end (s)")
    parser.add_argument("--seed", type=int, default=10, help="speech scripts and fault timing")
    parser.add_argument(
        "--previews",
        choices=("on", "off"),
        default="on",
        help="on (default): the live profile's previews run (best effort: they never make a word final, so "
        "finals stay a function of the audio); off: no previews",
    )
    add_skip_missed_ticks(parser)
    parser.add_argument(
        "--cache",
        choices=("on", "off"),
        default="off",
        help="off (default): no run is answered from a cache, so every replayed decode runs the model again; "
        "on: the chaos run uses the configured tiers (the reference never does)",
    )


@dataclass(frozen=True)
class RunResult:
    """One run of the service: what it published, and how the recorders and replicas fared."""

    output: TopicOutput
    recorders: Mapping[str, RecorderResult]
    census: ChunkCensus | None
    dead_letters: dict[str, int]
    wall_s: float
    drain_s: float
    injector: FaultInjector | None
    state_resets: float  # stream_app_state_resets_total over the replicas alive at the end


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the reference and the chaos run on a private stack, verify, print the table and summary."""
    started = time.monotonic()
    if args.previews == "off":
        settings = dataclasses.replace(settings, streaming=dataclasses.replace(settings.streaming, preview_step=0.0))
    skip = dataclasses.replace(settings.streaming, skip_missed_ticks=args.skip_missed_ticks == "on")
    settings = dataclasses.replace(settings, streaming=skip)
    seconds = args.minutes * 60.0
    library = UtteranceLibrary(BENCH_HOME / "utterances")
    library.prepare(voice_utterances(args.streams))
    scripts = plan_scripts(args.streams, seconds, seed=args.seed, prefix="chaos", length=library.seconds)
    expected = {s.stream_id: s.chunk_count(library, args.chunk_ms) for s in scripts}
    run_seconds = max(s.duration(library) for s in scripts)
    plan = FaultPlan(
        kill_interval=(args.kill_min, args.kill_max),
        max_kills=args.max_kills,
        broker_at=args.broker_at * run_seconds if args.broker_outage > 0 else None,
        broker_down=args.broker_outage,
        redis_at=args.redis_at * run_seconds if args.redis_outage > 0 else None,
        redis_down=args.redis_outage,
        seed=args.seed,
    )
    with PrivateStack(settings) as stack:
        private = stack.settings
        print(f"[chaos] private stack: Kafka {private.kafka.bootstrap_servers}, Redis {private.caching.l3_redis_url}")
        print(f"[chaos] reference: {len(scripts)} streams of {run_seconds:.0f} s, {args.reference_replicas} replica(s)")
        reference = _run_service(
            stack, scripts, library, args, replicas=args.reference_replicas, env=CACHE_OFF,
            realtime=args.reference_pace == "realtime", plan=None, expected=None,
        )  # fmt: skip
        print(f"[chaos] chaos run: {args.replicas} replicas, faults {plan}")
        chaos = _run_service(
            stack, scripts, library, args, replicas=args.replicas, env=CACHE_OFF if args.cache == "off" else {},
            realtime=True, plan=plan, expected=expected,
        )  # fmt: skip
    ids = [s.stream_id for s in scripts]
    verdict = verify(reference.output, chaos.output, ids)
    injector, census = chaos.injector, chaos.census
    if injector is None or census is None:
        raise RuntimeError("the chaos run has no fault injector or chunk census")
    scripts_text = [s.text for s in scripts]
    rows = [
        {
            "stream": v.stream_id,
            "complete": v.complete,
            "ref_finals": v.reference_finals,
            "finals": v.finals,
            "missing": v.missing_finals,
            "extra": v.extra_finals,
            "conflicts": v.conflicting_ids,
            "text_mismatches": v.text_mismatches,
            "replayed": v.repeated_finals,
            "wer_vs_ref": round(v.wer_vs_reference, 4),
            "recorder": chaos.recorders[v.stream_id].error or "ok",
        }
        for v in verdict.streams
    ]
    outages = [e for e in injector.events if e.kind in ("broker", "redis")]
    differences = [
        {"stream": v.stream_id, "missing": list(v.missing), "extra": list(v.extra)}
        for v in verdict.streams
        if v.missing or v.extra
    ]
    for difference in differences:
        print(f"[chaos] {difference['stream']}: reference has {difference['missing']}, chaos has {difference['extra']}")
    summary: dict[str, Any] = {
        "streams": len(scripts),
        "kills": injector.count("kill"),
        "broker_restarts": injector.count("broker"),
        "redis_restarts": injector.count("redis"),
        "streams_complete": verdict.streams_complete,
        "missing_final_segments": verdict.missing_final_segments,
        "conflicting_final_ids": verdict.conflicting_final_ids,
        "final_text_mismatches": verdict.final_text_mismatches,
        "state_resets_undisturbed": reference.state_resets,
        "state_resets_chaos": chaos.state_resets,
        "publisher_chunks_lost": census.lost,
        "wer_vs_reference_delta": round(verdict.wer_vs_reference, 5),
        "extra_final_segments": verdict.extra_final_segments,
        "reference_final_segments": sum(v.reference_finals for v in verdict.streams),
        "chaos_final_segments": sum(v.finals for v in verdict.streams),
        "replayed_final_records": sum(v.repeated_finals for v in verdict.streams),
        "reference_streams_complete": sum(1 for sid in ids if reference.output.get(sid).complete),
        "wer_reference_vs_script": round(_script_wer(reference.output, ids, scripts_text), 4),
        "wer_chaos_vs_script": round(_script_wer(chaos.output, ids, scripts_text), 4),
        "differences": differences[:20],
        "unplanned_exits": injector.count("unplanned_exit"),
        "dead_letters": sum(chaos.dead_letters.values()),
        "dead_letter_reasons": chaos.dead_letters,
        "reference_dead_letters": sum(reference.dead_letters.values()),
        "broker_down_s": round(sum(e.seconds for e in outages if e.kind == "broker"), 1),
        "redis_down_s": round(sum(e.seconds for e in outages if e.kind == "redis"), 1),
        "chunks_expected": census.expected,
        "publisher_chunks_duplicated": census.duplicates,
        "publisher_errors": sum(1 for r in chaos.recorders.values() if r.error),
        "publisher_undelivered_reported": sum(r.undelivered for r in chaos.recorders.values()),
        "publisher_producers_replaced": sum(r.producers_replaced for r in chaos.recorders.values()),
        "unreadable_records": chaos.output.unreadable + reference.output.unreadable,
        "audio_s_per_stream": round(run_seconds, 1),
        "replicas": args.replicas,
        "partitions": args.partitions,
        "chunk_ms": args.chunk_ms,
        "reference": (
            f"same service undisturbed, {args.reference_replicas} replica(s), cache off, {args.reference_pace}"
        ),
        "reference_wall_s": round(reference.wall_s, 1),
        "chaos_wall_s": round(chaos.wall_s, 1),
        "chaos_drain_s": round(chaos.drain_s, 1),
        "wall_s": round(time.monotonic() - started, 1),
        "model": settings.optimization.model,
        "precision": settings.optimization.default_precision,
        "commit_step_s": settings.commit_step_seconds,
        "previews": args.previews,
        "skip_missed_ticks": args.skip_missed_ticks,
        "cache": args.cache,
        "goals": GOALS,
    }
    emit(
        "chaos: every stream of a disturbed run against an undisturbed run of the same audio",
        rows,
        summary,
        as_json=args.json,
    )
    return 0


def _run_service(
    stack: PrivateStack,
    scripts: Sequence[SpeechScript],
    library: UtteranceLibrary,
    args: argparse.Namespace,
    *,
    replicas: int,
    env: Mapping[str, str],
    realtime: bool,
    plan: FaultPlan | None,
    expected: Mapping[str, int] | None,
) -> RunResult:
    """Start replicas on fresh topics, publish every script, inject ``plan``, wait for every stream's end."""
    with ServiceHarness(stack.settings, env=env, partitions=args.partitions) as harness:
        for index in range(replicas):
            harness.start(f"r{index + 1}", wait=0)
        for name in harness.replicas:
            harness.wait_ready(name, timeout=300)
        fleet = RecorderFleet(harness.publisher, scripts, library, chunk_ms=args.chunk_ms, realtime=realtime)
        injector = FaultInjector(harness, stack, plan) if plan is not None else None
        started = time.monotonic()
        fleet.start()
        if injector is not None:
            injector.start()
        while not fleet.join(timeout=5.0):
            _check(harness, injector)
        if injector is not None:
            injector.stop_kills()
        audio_done = time.monotonic()
        ids = [s.stream_id for s in scripts]
        output = _drain(harness, ids, args.drain_timeout, injector)
        drain_s = time.monotonic() - audio_done
        wall_s = time.monotonic() - started
        if injector is not None:
            injector.stop()
        state_resets = sum(
            sample(scrape(replica.metrics()), "stream_app_state_resets_total")
            for replica in harness.replicas.values()
            if replica.running
        )
        dead_letters = dead_letter_reasons(read_topic(harness.settings.kafka, harness.topics["dlq_topic"]))
        census = (
            census_chunks(read_topic(harness.settings.kafka, harness.topics["input_topic"], timeout=900), expected)
            if expected
            else None
        )
    shutil.rmtree(harness.workdir, ignore_errors=True)
    return RunResult(output, dict(fleet.results), census, dead_letters, wall_s, drain_s, injector, state_resets)


def _drain(harness: ServiceHarness, ids: Sequence[str], timeout: float, injector: FaultInjector | None) -> TopicOutput:
    """Re-read the transcripts topic until every stream ended or ``timeout`` passed; return the last read."""
    deadline = time.monotonic() + timeout
    topic = harness.topics["output_topic"]
    while True:
        output = group_segments(read_topic(harness.settings.kafka, topic, timeout=300))
        ended = sum(1 for sid in ids if output.get(sid).complete)
        if ended == len(ids) or time.monotonic() >= deadline:
            print(f"[chaos] {ended}/{len(ids)} streams ended")
            return output
        _check(harness, injector)
        time.sleep(POLL_S)


def _check(harness: ServiceHarness, injector: FaultInjector | None) -> None:
    """Fail fast when the fault injector broke; without one, when a replica died on its own."""
    if injector is not None:
        if injector.error is not None:
            raise RuntimeError(f"fault injection failed: {injector.error}") from injector.error
        return
    dead = [r.name for r in harness.replicas.values() if not r.running]
    if dead:
        raise RuntimeError(f"replica {dead[0]} of the undisturbed run exited:\n{harness.log_tail(dead[0])}")


def _script_wer(output: TopicOutput, ids: Sequence[str], scripts: Sequence[str]) -> float:
    """Pooled WER of a run's final texts against what the scripts say."""
    return corpus_wer(list(scripts), [output.get(sid).text() for sid in ids])
