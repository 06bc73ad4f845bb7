"""The engine's cache keys and look-ups: what makes two windows the same, and failures that become misses."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY

from stream_app.cache import TranscriptCache
from stream_app.cache.memory_tier import MemoryTier
from stream_app.config import Settings
from stream_app.inference.registry import ModelKey
from stream_app.inference.types import DecodeKind, WindowJob, WindowTranscript, Word
from stream_app.inference.window_cache import WindowCache

KEY = ModelKey("tiny.en", "int8")
LOOKUPS = "stream_app_cache_decode_lookups_total"


def _job(start: float = 0.0, prompt: str = "", seed: int = 1) -> WindowJob:
    samples = np.random.default_rng(seed).normal(0, 0.1, 16000).astype(np.float32)
    return WindowJob("s", 0, start, samples, prompt=prompt)


def _result(start: float) -> WindowTranscript:
    return WindowTranscript(
        (Word(start + 0.1, start + 0.4, "hello", 0.9),), "hello", -0.2, 0.01, 1.1, "tiny.en", "int8"
    )


@pytest.fixture
def cache(settings: Settings) -> WindowCache:
    return WindowCache(TranscriptCache([MemoryTier(1 << 20, 60.0)]), settings)


def test_the_same_audio_elsewhere_in_a_stream_is_a_hit_retimed(cache: WindowCache) -> None:
    cache.store(KEY, _job(0.0), _result(0.0))
    hit = cache.lookup(KEY, _job(30.0))
    assert hit is not None and hit.cached
    assert hit.words[0].start == pytest.approx(30.1) and hit.text == "hello"


def test_prompt_model_and_audio_are_part_of_the_key(cache: WindowCache) -> None:
    base = cache.key(KEY, _job())
    assert cache.key(KEY, _job(start=12.0)) == base  # the position in the stream is not
    assert cache.key(KEY, _job(prompt="Earlier words.")) != base
    assert cache.key(KEY, _job(prompt="Other words.")) != cache.key(KEY, _job(prompt="Earlier words."))
    assert cache.key(ModelKey("tiny.en", "float32"), _job()) != base
    assert cache.key(KEY, _job(seed=2)) != base
    cache.store(KEY, _job(), _result(0.0))
    assert cache.lookup(KEY, _job(prompt="Earlier words.")) is None


def test_the_encoder_context_is_part_of_the_key(settings: Settings) -> None:
    tier = TranscriptCache([MemoryTier(1 << 20, 60.0)])

    def keyed(**optimization: object) -> str:
        changed = dataclasses.replace(settings, optimization=dataclasses.replace(settings.optimization, **optimization))
        return WindowCache(tier, changed).key(KEY, _job())

    full, fitted = keyed(encoder_context="full"), keyed(encoder_context="fitted", context_margin=1.0)
    assert len({full, fitted, keyed(encoder_context="fitted", context_margin=2.0)}) == 3
    assert keyed(encoder_context="full", context_margin=2.0) == full  # the margin only matters when fitted


def test_cache_failures_become_misses(settings: Settings) -> None:
    class Broken(TranscriptCache):
        def lookup(self, key: str, *, window_start: float = 0.0) -> WindowTranscript | None:
            raise OSError("disk gone")

        def store(self, key: str, transcript: WindowTranscript, *, window_start: float = 0.0) -> None:
            raise OSError("disk gone")

    cache = WindowCache(Broken([]), settings)
    assert cache.lookup(KEY, _job()) is None
    cache.store(KEY, _job(), _result(0.0))  # logged, not raised


def _counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_previews_go_past_the_cache_and_are_counted(cache: WindowCache) -> None:
    before = _counted("stream_app_cache_bypassed_total", kind="preview")
    assert not cache.admits(dataclasses.replace(_job(), kind=DecodeKind.PREVIEW))
    assert _counted("stream_app_cache_bypassed_total", kind="preview") == before + 1
    # every decode that is a function of the audio and the stored state goes through it
    assert all(cache.admits(dataclasses.replace(_job(), kind=kind)) for kind in (DecodeKind.TICK, DecodeKind.CUT))
    assert cache.admits(_job())  # a file's stretch


def test_look_ups_are_counted_by_decode_kind_and_result(cache: WindowCache) -> None:
    tick = dataclasses.replace(_job(seed=7), kind=DecodeKind.TICK)
    miss, hit = ({"kind": "tick", "result": r} for r in ("miss", "hit"))
    before = (_counted(LOOKUPS, **miss), _counted(LOOKUPS, **hit))
    assert cache.lookup(KEY, tick) is None
    cache.store(KEY, tick, _result(0.0))
    assert cache.lookup(KEY, tick) is not None
    assert (_counted(LOOKUPS, **miss), _counted(LOOKUPS, **hit)) == (before[0] + 1, before[1] + 1)


def test_the_decode_kind_is_part_of_the_key(cache: WindowCache) -> None:
    # a tick the guards rejected is stored; the same audio as a cut must still get its own decode
    tick, cut = (dataclasses.replace(_job(), kind=kind) for kind in (DecodeKind.TICK, DecodeKind.CUT))
    assert cache.key(KEY, tick) != cache.key(KEY, cut)


def test_the_device_and_the_code_are_part_of_the_key(cache: WindowCache, monkeypatch: pytest.MonkeyPatch) -> None:
    from stream_app.inference import window_cache

    job = _job()
    assert cache.key(KEY, job) != cache.key(ModelKey("tiny.en", "int8", "cuda"), job)
    before = cache.key(KEY, job)
    monkeypatch.setattr(window_cache, "decoder_fingerprint", lambda: "another-release")
    assert cache.key(KEY, job) != before


def test_the_fingerprint_covers_the_decoder_the_codec_and_the_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """A release that changes how a window decodes must not read an earlier release's entries."""
    from importlib import metadata

    from stream_app.inference import window_cache

    hashed = {f"{p.parent.name}/{p.name}" for p in window_cache.decoder_sources()}
    for source in ("inference/transcriber.py", "inference/decode.py", "inference/guards.py", "cache/codec.py"):
        assert source in hashed
    first = window_cache.decoder_fingerprint()
    window_cache.decoder_fingerprint.cache_clear()
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "9.9" if name == "ctranslate2" else real(name))
    try:
        assert window_cache.decoder_fingerprint() != first
    finally:
        window_cache.decoder_fingerprint.cache_clear()


def test_new_weights_in_the_same_folder_get_new_keys(settings: Settings, tmp_path: Path) -> None:
    """A model folder updated in place (retrained weights, a new package) must not serve the old ones' entries."""
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"weights one")
    (folder / "config.json").write_text("{}")
    cache = WindowCache(TranscriptCache([MemoryTier(1 << 20, 60.0)]), settings)
    key = ModelKey(str(folder), "int8")
    cache.store(key, _job(), _result(0.0))
    assert cache.lookup(key, _job()) is not None
    (folder / "model.bin").write_bytes(b"weights two")
    cache.prepare(key)  # the model loaded again, from the new files
    assert cache.lookup(key, _job()) is None
