"""`bench cache`'s summary: final and preview look-ups apart, keys true to what they count, the goals."""

from __future__ import annotations

import math

import orjson

from stream_app.bench.cache import Passes, PassResult, summarize
from stream_app.bench.scrape import Samples, decode_hit_rate

LOOKUPS = "stream_app_cache_decode_lookups_total"
BYPASSED = "stream_app_cache_bypassed_total"
DIRECT = {"memory": (0.04, 1.0), "disk": (0.05, 1.0), "redis": (0.2, 1.0)}


def _lookups(**counts: float) -> Samples:
    """Counters from ``kind_result=count`` pairs, e.g. ``tick_hit=30``; ``preview_bypassed`` for bypasses."""
    out: Samples = {}
    for name, value in counts.items():
        kind, result = name.split("_")
        if result == "bypassed":
            out[(BYPASSED, (("kind", kind),))] = value
        else:
            out[(LOOKUPS, (("kind", kind), ("result", result)))] = value
    out[("stream_app_cache_lookup_seconds_bucket", (("le", "0.001"), ("tier", "redis")))] = 10
    out[("stream_app_cache_lookup_seconds_bucket", (("le", "0.001"), ("tier", "memory")))] = 10
    out[("stream_app_cache_lookup_seconds_bucket", (("le", "0.001"), ("tier", "disk")))] = 10
    return out


def _pass(name: str, wall: float, counters: Samples, wer: float = 0.25) -> PassResult:
    return PassResult(name, "r1", 100.0, wall, 3, wer, counters)


def _passes(repeat: Samples, *, repeat_wall: float = 1.0, repeat_wer: float = 0.25) -> Passes:
    cold = _pass("cold", 20.0, _lookups(tick_miss=30, cut_miss=6, preview_bypassed=4))
    warm = _lookups(tick_hit=30, cut_hit=6)
    return Passes(
        cold, _pass("replica", repeat_wall, repeat, repeat_wer), _pass("same", 1.0, warm), _pass("l2", 1.0, warm)
    )


def test_previews_not_looked_up_give_a_null_rate_and_say_so() -> None:
    summary = summarize(_passes(_lookups(tick_hit=30, cut_hit=6, preview_bypassed=2)), DIRECT, {"files": 3})
    assert summary["hit_rate_repeat_final"] == 1.0 and summary["hit_rate_repeat"] == 1.0
    assert summary["hit_rate_repeat_preview"] is None and summary["preview_lookups"] == 0
    assert (summary["previews_cold"], summary["previews_repeat"]) == (4, 2)
    assert summary["final_lookups_repeat"] == 36
    assert summary["speedup_repeat"] == 20.0 and summary["goals_met"] is True
    assert orjson.loads(orjson.dumps(summary))["hit_rate_repeat_preview"] is None


def test_looked_up_previews_are_reported_apart_from_finals() -> None:
    repeat = _lookups(tick_hit=30, cut_hit=6, preview_hit=2, preview_miss=2)
    summary = summarize(_passes(repeat), DIRECT, {})
    assert summary["hit_rate_repeat_final"] == 1.0
    assert summary["hit_rate_repeat_preview"] == 0.5 and summary["preview_lookups"] == 4
    assert summary["hit_rate_repeat"] == round(38 / 40, 3)  # every looked-up decode


def test_goals_need_every_final_hit_the_speedup_and_the_same_text() -> None:
    one_miss = _lookups(tick_hit=29, tick_miss=1, cut_hit=6)
    assert summarize(_passes(one_miss), DIRECT, {})["goals_met"] is False  # 0.97 overall, but a final missed
    assert summarize(_passes(_lookups(tick_hit=30, cut_hit=6), repeat_wall=2.5), DIRECT, {})["goals_met"] is False
    other_text = _passes(_lookups(tick_hit=30, cut_hit=6), repeat_wer=0.3)
    assert summarize(other_text, DIRECT, {})["goals_met"] is False


def test_no_look_ups_is_not_a_rate() -> None:
    assert math.isnan(decode_hit_rate({}, previews=True))
    assert math.isnan(decode_hit_rate(_lookups(preview_bypassed=3)))
