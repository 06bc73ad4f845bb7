"""`stream-app bench cache`: the same corpus through the service again, answered by each cache tier in turn.

Passes, each file one stream published as fast as possible, all on a private ``redis-server``:

1. ``cold``: replica r1 (empty L1, empty L2 folder, empty Redis) transcribes everything.
2. ``replica``: r1 stops; r2 starts (a new process: empty L1, its own empty L2 folder, the same
   Redis), so only Redis can answer. ``hit_rate_repeat``, ``speedup_repeat`` and ``redis_p95_ms``
   come from this pass.
3. ``same-process``: r2 again, so L1 answers (``l1_p95_ms``).
4. ``restart``: r2 stops; r1 starts again (empty L1, its L2 folder from pass 1), so L2 answers
   (``l2_p95_ms``).

Hit rates come from each worker's ``stream_app_cache_decode_lookups_total`` (by decode kind and
result), per-tier hits from ``stream_app_cache_hits_total``, tier latencies from its
``stream_app_cache_lookup_seconds`` histogram (deltas over the pass, interpolated inside the bucket as
Prometheus' ``histogram_quantile`` does). The tiers are also timed directly in this process on the
same entries (``*_direct``), which resolves below the buckets.

Final decodes (ticks, pauses, cuts) are reported apart from previews. Previews are not looked up at
all (`stream_app.inference.window_cache`: which previews run depends on step timing, so a repeat would
not meet their keys): ``preview_lookups`` counts any that were, ``hit_rate_repeat_preview`` is null
without one, and ``previews_*`` say how many previews each pass sent to the model past the cache.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import redis

from stream_app.bench.common import Clip, make_clips, run_streams
from stream_app.bench.report import emit
from stream_app.bench.scrape import (
    TIERS,
    Samples,
    bucket_quantile,
    bypassed,
    decode_hit_rate,
    decode_lookups,
    delta,
    scrape,
    tier_errors,
    tier_hits,
)
from stream_app.cache import TranscriptCache, build_cache, decode_entry
from stream_app.cache.redis_tier import KEY_PREFIX
from stream_app.config import Settings
from stream_app.testing.service import ServiceHarness, free_port

WARMUP_MAX_WER = 0.8  # espeak speech through tiny.en scores 0.15-0.45; 1.0 means nothing came out
GOALS = (
    "hit_rate_repeat >= 0.9; hit_rate_repeat_final == 1; l1_p95_ms <= 1; redis_p95_ms <= 5; "
    "speedup_repeat >= 10; wer_repeat == wer_cold"
)


# ---- a private Redis ------------------------------------------------------------------------------


class LocalRedisServer:
    """A ``redis-server`` of our own on a free loopback port, without persistence.

    ``stop`` and ``start`` keep the port, so clients configured with :attr:`url` reconnect after an outage.
    """

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.port = port or free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL workers use (``STREAM_APP_CACHING__L3_REDIS_URL``)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers PING."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while True:
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        raise
                    time.sleep(0.05)

    def stop(self) -> None:
        """Kill the server (an outage, not a shutdown: nothing is saved)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def client(self) -> redis.Redis:
        """Open a client of this server."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2.0, socket_connect_timeout=2.0)

    def __enter__(self) -> LocalRedisServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


# ---- one pass -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PassResult:
    """One pass of the corpus through one replica, and what its cache counters did meanwhile."""

    name: str
    replica: str
    audio_seconds: float
    wall_seconds: float
    completed: int
    wer: float
    counters: Samples

    @property
    def rtx(self) -> float:
        """Audio seconds per wall second, publish to last end of stream."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def row(self, answered_by: str) -> dict[str, Any]:
        """Make a table row: hits per tier, hit rate, throughput, WER and the answering tier's p95."""
        counts = tier_hits(self.counters)
        return {
            "pass": self.name,
            "replica": self.replica,
            "l1_hits": int(counts["memory"][0]),
            "l2_hits": int(counts["disk"][0]),
            "redis_hits": int(counts["redis"][0]),
            "lookups": int(decode_lookups(self.counters, previews=False)[1]),
            "preview_lookups": int(decode_lookups(self.counters, previews=True)[1]),
            "previews": int(bypassed(self.counters)),
            "redis_errors": int(tier_errors(self.counters, "redis")),
            "hit_rate": decode_hit_rate(self.counters, previews=False),
            "wall_s": self.wall_seconds,
            "rtx": self.rtx,
            "wer": self.wer,
            "streams_ended": self.completed,
            "p95_ms": _ms(bucket_quantile(self.counters, answered_by, 0.95)) if answered_by else math.nan,
        }


@dataclass(frozen=True)
class Passes:
    """The four passes of one run, in the order they ran."""

    cold: PassResult
    replica: PassResult
    same: PassResult
    restart: PassResult

    @property
    def all(self) -> tuple[PassResult, ...]:
        """Every pass, in order."""
        return (self.cold, self.replica, self.same, self.restart)

    def rows(self) -> list[dict[str, Any]]:
        """Make the table: one row a pass, with the p95 of the tier that should answer it."""
        return [self.cold.row(""), self.replica.row("redis"), self.same.row("memory"), self.restart.row("disk")]


def timed_pass(
    harness: ServiceHarness, replica: str, clips: list[Clip], name: str, *, streams: int, chunk_ms: float
) -> PassResult:
    """Stream every clip through ``replica`` and take its cache counters' increase over the pass."""
    before = scrape(harness.replicas[replica].metrics())
    run = run_streams(harness, clips, streams, label=name, chunk_ms=chunk_ms)
    after = scrape(harness.replicas[replica].metrics())
    return PassResult(name, replica, run.audio_seconds, run.wall_seconds, run.completed, run.wer, delta(after, before))


def retire(harness: ServiceHarness, replica: str) -> None:
    """Stop ``replica`` cleanly and forget it, so that traffic helpers do not take it for a crashed one."""
    harness.stop(replica)
    del harness.replicas[replica]


def start_warm(harness: ServiceHarness, replica: str, l2: Path, warmup: Clip, chunk_ms: float, tries: int = 3) -> None:
    """Start ``replica`` with its own L2 folder and stream one unrelated clip: start-up stays out of the timings.

    A replica whose warm-up text is all wrong is restarted: a worker that started before faust saw its
    changelog topics fails every record (``PartitionsMismatch``) until it restarts.
    """
    for attempt in range(1, tries + 1):
        harness.start(replica, env={"STREAM_APP_CACHING__L2_PATH": str(l2)})
        label = f"warmup-{replica}-{time.monotonic_ns()}"
        result = run_streams(harness, [warmup], 1, label=label, chunk_ms=chunk_ms, timeout=300)
        if result.completed == 1 and result.wer < WARMUP_MAX_WER:
            return
        print(f"warm-up on {replica} failed (attempt {attempt}, wer {result.wer:.2f}); restarting it")
        retire(harness, replica)
    raise RuntimeError(f"replica {replica} never transcribed its warm-up clip:\n{harness.log_tail(replica)}")


# ---- the tiers timed in this process ---------------------------------------------------------------


def direct_tier_p95(settings: Settings, redis_url: str, workdir: Path, rounds: int) -> dict[str, tuple[float, float]]:
    """Time each tier alone on the entries the service stored in Redis: (p95 ms, hit rate) of its look-ups.

    Memory and disk are filled with the same entries first; every entry is looked up ``rounds`` times.
    A look-up that failed (a Redis timeout under load) still counts in the latency, as a miss.
    """
    with redis.Redis.from_url(redis_url) as client:
        keys = [k.decode()[len(KEY_PREFIX) :] for k in client.scan_iter(match=f"{KEY_PREFIX}*")]
        entries = {key: client.get(KEY_PREFIX + key) for key in keys}
    results: dict[str, tuple[float, float]] = {}
    for tier in TIERS:
        caching = dataclasses.replace(
            settings.caching, cache_levels=(tier,), l3_redis_url=redis_url, l2_path=str(workdir / "direct-l2")
        )
        cache = build_cache(caching)
        try:
            if tier != "redis":
                _fill(cache, entries)
            cache.reset_stats()
            for _ in range(rounds):
                for key in entries:
                    cache.lookup(key)
            stats = cache.stats().tiers[tier]
            p95 = stats.percentile(95)
            results[tier] = (
                math.nan if p95 is None else p95 * 1000,
                math.nan if stats.hit_rate is None else stats.hit_rate,
            )
        finally:
            cache.close()
    return results


def _fill(cache: TranscriptCache, entries: Mapping[str, bytes | None]) -> None:
    for key, value in entries.items():
        if value is not None:
            cache.store(key, decode_entry(value, 0.0))


# ---- the command ----------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the cache benchmark."""
    parser.add_argument("--files", type=int, default=6, help="number of generated speech files (default 6)")
    parser.add_argument("--seconds", type=float, default=40.0, help="length of each file in seconds (default 40)")
    parser.add_argument("--streams", type=int, default=4, help="concurrent streams in every pass (default 4)")
    parser.add_argument(
        "--profile", choices=("live", "throughput"), default="live", help="streaming profile of the workers"
    )
    parser.add_argument("--chunk-ms", type=float, default=500.0, help="chunk length of the published streams")
    parser.add_argument("--rounds", type=int, default=20, help="look-ups per entry when timing tiers directly")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the four passes and the direct tier timings; print the table and the goals."""
    clips = make_clips(args.files, args.seconds)
    warmups = make_clips(3, 6.0, seed=1_000_003)  # other audio: warms the model without touching the corpus' keys
    workdir = Path(tempfile.mkdtemp(prefix="stream-app-bench-cache-"))
    chunk_ms = float(args.chunk_ms)
    with LocalRedisServer(workdir / "redis") as server:
        env = {"STREAM_APP_STREAMING__PROFILE": args.profile, "STREAM_APP_CACHING__L3_REDIS_URL": server.url}
        with ServiceHarness(settings, env=env) as harness:
            start_warm(harness, "r1", workdir / "l2-r1", warmups[0], chunk_ms)
            cold = timed_pass(harness, "r1", clips, "cold", streams=args.streams, chunk_ms=chunk_ms)
            with server.client() as client:
                keys_after_cold = int(client.dbsize())  # the warm-up clip's entries included
            retire(harness, "r1")
            start_warm(harness, "r2", workdir / "l2-r2", warmups[1], chunk_ms)
            replica = timed_pass(harness, "r2", clips, "replica", streams=args.streams, chunk_ms=chunk_ms)
            same = timed_pass(harness, "r2", clips, "same-process", streams=args.streams, chunk_ms=chunk_ms)
            retire(harness, "r2")
            start_warm(harness, "r1", workdir / "l2-r1", warmups[2], chunk_ms)
            restart = timed_pass(harness, "r1", clips, "restart", streams=args.streams, chunk_ms=chunk_ms)
        direct = direct_tier_p95(settings, server.url, workdir, args.rounds)
    shutil.rmtree(workdir, ignore_errors=True)

    passes = Passes(cold, replica, same, restart)
    setup = {
        "model": settings.optimization.model,
        "precision": settings.optimization.default_precision,
        "profile": args.profile,
        "files": len(clips),
        "audio_seconds": round(cold.audio_seconds, 2),
        "streams": args.streams,
        "redis_keys_after_cold": keys_after_cold,
    }
    summary = summarize(passes, direct, setup)
    emit(
        "cache: the same corpus again through the service (cold, other replica, same process, restart)",
        passes.rows(),
        summary,
        as_json=args.json,
    )
    return 0


def summarize(passes: Passes, direct: Mapping[str, tuple[float, float]], setup: Mapping[str, Any]) -> dict[str, Any]:
    """Return the summary line: ``setup`` (what ran), hit rates, tier latencies, speed-ups and the goals.

    Hit rates count decodes looked up (``stream_app_cache_decode_lookups_total``); previews are not
    looked up, so ``hit_rate_repeat_preview`` is null unless ``preview_lookups`` says some were.
    """
    cold, replica, same, restart = passes.all
    summary: dict[str, Any] = {
        **setup,
        "hit_rate_cold": _round(decode_hit_rate(cold.counters), 3),
        "hit_rate_repeat": _round(decode_hit_rate(replica.counters), 3),
        "hit_rate_repeat_final": _round(decode_hit_rate(replica.counters, previews=False), 3),
        "hit_rate_repeat_preview": _or_none(decode_hit_rate(replica.counters, previews=True), 3),
        "final_lookups_repeat": int(decode_lookups(replica.counters, previews=False)[1]),
        "preview_lookups": int(sum(decode_lookups(p.counters, previews=True)[1] for p in passes.all)),
        "previews_cold": int(bypassed(cold.counters)),
        "previews_repeat": int(bypassed(replica.counters)),
        "hit_rate_l1_pass": _round(decode_hit_rate(same.counters), 3),
        "hit_rate_l2_pass": _round(decode_hit_rate(restart.counters), 3),
        "l1_p95_ms": _round(_ms(bucket_quantile(same.counters, "memory", 0.95)), 4),
        "l2_p95_ms": _round(_ms(bucket_quantile(restart.counters, "disk", 0.95)), 4),
        "redis_p95_ms": _round(_ms(bucket_quantile(replica.counters, "redis", 0.95)), 4),
        "l1_p50_ms": _round(_ms(bucket_quantile(same.counters, "memory", 0.5)), 4),
        "l2_p50_ms": _round(_ms(bucket_quantile(restart.counters, "disk", 0.5)), 4),
        "redis_p50_ms": _round(_ms(bucket_quantile(replica.counters, "redis", 0.5)), 4),
        "l1_p95_ms_direct": _round(direct["memory"][0], 4),
        "l2_p95_ms_direct": _round(direct["disk"][0], 4),
        "redis_p95_ms_direct": _round(direct["redis"][0], 4),
        "redis_hit_rate_direct": _round(direct["redis"][1], 3),
        "cold_rtx": _round(cold.rtx, 3),
        "speedup_repeat": _round(replica.rtx / cold.rtx if cold.rtx else math.nan, 2),
        "speedup_l1_pass": _round(same.rtx / cold.rtx if cold.rtx else math.nan, 2),
        "speedup_l2_pass": _round(restart.rtx / cold.rtx if cold.rtx else math.nan, 2),
        "wer_cold": _round(cold.wer, 4),
        "wer_repeat": _round(replica.wer, 4),
        "latency_source": "service /metrics histogram buckets (interpolated); *_direct: tiers timed in-process",
        "goals": GOALS,
    }
    summary["goals_met"] = _goals_met(summary)
    return summary


def _goals_met(summary: Mapping[str, Any]) -> bool:
    checks: Iterable[tuple[str, float, bool]] = (
        ("hit_rate_repeat", 0.9, True),
        ("hit_rate_repeat_final", 1.0, True),
        ("l1_p95_ms", 1.0, False),
        ("redis_p95_ms", 5.0, False),
        ("speedup_repeat", 10.0, True),
    )
    for key, goal, at_least in checks:
        value = summary.get(key)
        if not isinstance(value, float) or math.isnan(value):
            return False
        if (value < goal) if at_least else (value > goal):
            return False
    return summary.get("wer_repeat") == summary.get("wer_cold")


def _or_none(value: float, digits: int) -> float | None:
    """Round ``value``; a rate of no look-ups (NaN) is null in the JSON line."""
    return None if math.isnan(value) else round(value, digits)


def _ms(seconds: float) -> float:
    return seconds * 1000.0


def _round(value: float, digits: int) -> float:
    return value if math.isnan(value) else round(value, digits)
