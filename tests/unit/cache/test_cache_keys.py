import numpy as np
import pytest

from stream_app.cache.keys import cache_key

OPTS = {"beam_size": 1, "vad": True, "no_speech_threshold": 0.6}


def _key(samples: np.ndarray, **overrides: object) -> str:
    args: dict[str, object] = {
        "model": "tiny.en",
        "precision": "int8",
        "language": "en",
        "options": OPTS,
        "code_version": "1",
    }
    args.update(overrides)
    return cache_key(samples, **args)  # type: ignore[arg-type]


def _audio(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(16_000).astype(np.float32)


def test_same_audio_and_options_give_same_key() -> None:
    audio = _audio()
    assert _key(audio) == _key(audio.copy())
    assert len(_key(audio)) == 64


def test_option_order_does_not_matter() -> None:
    reordered = {"no_speech_threshold": 0.6, "vad": True, "beam_size": 1}
    assert _key(_audio(), options=reordered) == _key(_audio())


@pytest.mark.parametrize(
    "override",
    [
        {"model": "base"},
        {"precision": "float32"},
        {"language": "de"},
        {"code_version": "2"},
        {"options": {**OPTS, "beam_size": 5}},
    ],
)
def test_anything_that_changes_the_result_changes_the_key(override: dict[str, object]) -> None:
    assert _key(_audio(), **override) != _key(_audio())


def test_different_audio_gives_different_key() -> None:
    audio = _audio()
    changed = audio.copy()
    changed[123] += 1e-3
    assert _key(changed) != _key(audio)
    assert _key(audio[:-1]) != _key(audio)


def test_dtype_and_byte_order_are_normalised() -> None:
    audio = _audio()
    assert _key(audio.astype(">f4")) == _key(audio)
    assert _key(audio[::1].astype(np.float64)) == _key(audio)


def test_known_digest_is_stable_across_runs() -> None:
    # A fixed input pinned to its digest: replicas (and releases) must agree byte for byte.
    audio = np.linspace(-1.0, 1.0, 1600, dtype=np.float32)
    assert _key(audio) == "177208e6b291da00bda340a58877d5c8a83d8f3731d2ef6dd856c82ed94ac104"


def test_rejects_multichannel_audio() -> None:
    with pytest.raises(ValueError, match="mono"):
        _key(np.zeros((2, 100), dtype=np.float32))
