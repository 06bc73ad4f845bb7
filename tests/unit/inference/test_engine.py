"""The engine's live switch on real tiny.en: queued windows finish on the old model, new ones use the new."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from stream_app.audio.files import decode_audio_file
from stream_app.cache import TranscriptCache
from stream_app.cache.memory_tier import MemoryTier
from stream_app.config import Settings
from stream_app.inference.engine import InferenceEngine
from stream_app.inference.registry import ModelKey
from stream_app.inference.types import DecodeKind, WindowJob


@pytest.fixture
def engine(settings: Settings) -> Iterator[InferenceEngine]:
    engine = InferenceEngine(settings, use_cache=False)
    engine.start("tiny.en", "int8")
    yield engine
    engine.close()


def _job(samples: np.ndarray, index: int) -> WindowJob:
    return WindowJob("s", index, 0.0, samples)


async def test_switch_lets_queued_windows_finish_on_the_old_model(
    engine: InferenceEngine, jfk_path: Path, jfk_reference: str
) -> None:
    samples = decode_audio_file(jfk_path)
    changes: list[ModelKey] = []
    engine.on_change = lambda: changes.append(engine.active)

    queued = [asyncio.ensure_future(engine.transcribe(_job(samples, i))) for i in range(3)]
    await asyncio.sleep(0)  # the windows reach the old pool before the switch starts
    key = await engine.switch("tiny.en", "int8_float32")
    after = await engine.transcribe(_job(samples, 9))
    before = await asyncio.gather(*queued)

    assert key == ModelKey("tiny.en", "int8_float32", "cpu")
    assert all(r.precision == "int8" and "country" in r.text.lower() for r in before)
    assert after.precision == "int8_float32" and "country" in after.text.lower()
    # activation, then retirement of the old model, each announced
    assert changes == [key, key]
    assert [(m["precision"], m["active"]) for m in engine.loaded()] == [("int8_float32", True)]


async def test_switching_to_the_active_model_changes_nothing(engine: InferenceEngine) -> None:
    changes: list[str] = []
    engine.on_change = lambda: changes.append("changed")
    assert await engine.switch("tiny.en", "int8") == engine.active
    assert changes == []


async def test_a_failed_switch_keeps_serving_the_old_model(engine: InferenceEngine) -> None:
    with pytest.raises(Exception, match="no-such-model"):
        await engine.switch("no-such-model", "int8")
    assert engine.active == ModelKey("tiny.en", "int8", "cpu")
    assert [m["model"] for m in engine.loaded()] == ["tiny.en"]


async def test_previews_never_meet_the_cache_and_ticks_do(settings: Settings, jfk_path: Path) -> None:
    cache = TranscriptCache([MemoryTier(1 << 24, 600.0)])
    engine = InferenceEngine(settings, cache=cache)
    engine.start("tiny.en", "int8")
    samples = decode_audio_file(jfk_path)
    preview, tick = (dataclasses.replace(_job(samples, 0), kind=kind) for kind in (DecodeKind.PREVIEW, DecodeKind.TICK))
    try:
        previews = [await engine.transcribe(preview) for _ in range(2)]
        assert cache.stats().tiers["memory"].hits + cache.stats().tiers["memory"].misses == 0  # not even looked up
        ticks = [await engine.transcribe(tick) for _ in range(2)]
    finally:
        engine.close()
    assert [r.cached for r in previews] == [False, False]
    assert [r.cached for r in ticks] == [False, True]
    assert ticks[1].words == ticks[0].words  # a hit equals the decode, time for time
    memory = cache.stats().tiers["memory"]
    assert (memory.hits, memory.misses) == (1, 1)


async def test_a_window_of_a_model_switched_away_is_not_re_run_on_its_ladder(
    settings: Settings, jfk_path: Path, tmp_path: Path
) -> None:
    """Adaptive precision must not load the retired model's next rung again (it would stay loaded)."""
    from stream_app.inference.models import resolve_model
    from stream_app.inference.registry import ModelKey as Key

    opt = dataclasses.replace(settings.optimization, adaptive_quantization=True, adaptive_logprob_threshold=0.0)
    engine = InferenceEngine(dataclasses.replace(settings, optimization=opt), use_cache=False)
    engine.start("tiny.en", "int8")
    other = tmp_path / "tiny-elsewhere"  # the same weights under another name: a switch to another model
    other.symlink_to(resolve_model("tiny.en", Path(opt.model_cache_dir).expanduser()), target_is_directory=True)
    decoded, release = asyncio.Event(), asyncio.Event()
    plain = engine._transcribe_on

    async def held(key: Key, job: WindowJob) -> object:
        result = await plain(key, job)
        if key.model == "tiny.en" and key.precision == "int8":
            decoded.set()
            await release.wait()  # the decode is done; the switch happens before the engine looks at it
        return result

    engine._transcribe_on = held  # type: ignore[method-assign,assignment]
    try:
        window = asyncio.ensure_future(engine.transcribe(_job(decode_audio_file(jfk_path), 1)))
        await decoded.wait()
        await engine.switch(str(other), "int8")
        release.set()
        result = await window
        assert result.precision == "int8" and result.escalated_from is None and "country" in result.text.lower()
        assert [(m["model"], m["precision"]) for m in engine.loaded()] == [(str(other), "int8")]
    finally:
        engine.close()


async def test_a_switch_to_a_model_over_the_memory_budget_is_refused(settings: Settings) -> None:
    from stream_app.inference.exceptions import ModelOverBudget

    opt = dataclasses.replace(settings.optimization, memory_budget=200 << 20)  # tiny.en int8 fits, float32 does not
    engine = InferenceEngine(dataclasses.replace(settings, optimization=opt), use_cache=False)
    engine.start("tiny.en", "int8")
    try:
        with pytest.raises(ModelOverBudget, match=r"over optimization\.memory_budget"):
            await engine.switch("tiny.en", "float32")
        assert engine.active == ModelKey("tiny.en", "int8", "cpu")
        assert [(m["model"], m["precision"]) for m in engine.loaded()] == [("tiny.en", "int8")]
    finally:
        engine.close()
