"""Speech streams for the chaos benchmark: planned scripts, chunks cut as sent, the same audio every time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stream_app.audio.pcm import pcm_to_float
from stream_app.testing.corpus import SAMPLE_RATE, SENTENCES
from stream_app.testing.speech_streams import (
    LEAD_SECONDS,
    UtteranceLibrary,
    cut_chunks,
    plan_scripts,
    voice_utterances,
)


def test_cut_chunks_numbers_tiles_and_ends_the_stream() -> None:
    pieces = [np.full(n, i / 10, np.float32) for i, n in enumerate([1000, 7000, 3, 2997])]
    chunks = list(cut_chunks(pieces, 11_000, 200.0))  # 3,200 samples per chunk
    assert [c.seq for c in chunks] == [0, 1, 2, 3]
    assert [c.offset for c in chunks] == [0, 3200, 6400, 9600]
    assert [c.end_of_stream for c in chunks] == [False, False, False, True]
    assert chunks[-1].duration == pytest.approx(1400 / SAMPLE_RATE)
    joined = np.concatenate([pcm_to_float(c.pcm, "s16le", 1)[:, 0] for c in chunks])
    np.testing.assert_allclose(joined, np.concatenate(pieces), atol=1 / 32768)


def test_an_exact_multiple_still_ends_on_a_full_chunk() -> None:
    chunks = list(cut_chunks([np.zeros(6400, np.float32)], 6400, 200.0))
    assert [(c.offset, c.end_of_stream) for c in chunks] == [(0, False), (3200, True)]


def test_scripts_are_distinct_long_enough_and_reproducible() -> None:
    scripts = plan_scripts(30, 120.0, seed=3)
    assert len({s.stream_id for s in scripts}) == 30
    assert len({s.utterances for s in scripts}) == 30
    assert len({(s.utterances[0][1], s.utterances[0][2]) for s in scripts[:24]}) == 24  # voice x speed
    assert all(LEAD_SECONDS + sum(s.pauses) + 3.6 * len(s.utterances) >= 120.0 for s in scripts)
    assert plan_scripts(30, 120.0, seed=3) == scripts
    assert plan_scripts(30, 120.0, seed=4) != scripts
    assert scripts[0].text.startswith(SENTENCES[scripts[0].utterances[0][0]])


def _library(folder: Path, scripts_utterances: set[tuple[int, int, int]]) -> UtteranceLibrary:
    """A library whose utterances are already cached (tones instead of espeak-ng speech)."""
    folder.mkdir(parents=True, exist_ok=True)
    for sentence, voice, speed in scripts_utterances:
        tone = 0.3 * np.sin(np.arange(8000 + 800 * sentence) * (0.01 * (voice + 1))).astype(np.float32)
        np.save(folder / f"u-{sentence}-{voice}-{speed}.npy", tone)
    return UtteranceLibrary(folder)


def test_a_script_sends_the_same_samples_every_time(tmp_path: Path) -> None:
    library = _library(tmp_path, set(voice_utterances(1)))
    (script,) = plan_scripts(1, 30.0, seed=5, length=library.seconds)
    assert script.duration(library) >= 30.0
    first = list(script.chunks(library, 100.0))
    second = list(script.chunks(UtteranceLibrary(tmp_path), 100.0))
    assert [c.pcm for c in first] == [c.pcm for c in second]
    assert len(first) == script.chunk_count(library, 100.0)
    assert sum(c.duration for c in first) == pytest.approx(script.duration(library))
    assert first[-1].end_of_stream and not any(c.end_of_stream for c in first[:-1])
