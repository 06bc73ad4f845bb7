"""`transcribe_batch` with the real tiny.en model on 1,000+ generated files, corrupt and empty ones included."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import orjson
import pytest
import soundfile

from stream_app.batch import PackingPolicy, transcribe_batch
from stream_app.batch.model import load_transcriber
from stream_app.config.loader import load_settings
from stream_app.inference.transcriber import WhisperTranscriber
from stream_app.testing.tools import require_binary

pytestmark = [pytest.mark.slow]


@pytest.fixture(autouse=True)
def _espeak() -> None:
    require_binary("espeak-ng")


RATE = 16000
# 40 distinct short clips (varied content: identical clips packed side by side read as a repetition
# loop to Whisper); the noun is the word each transcript must contain.
ADJECTIVES = ("green", "small", "happy", "bright", "quiet", "early", "heavy", "broken")
NOUNS = ("apple", "window", "garden", "morning", "doctor")
PHRASES = [(f"{a} {n}", n) for a in ADJECTIVES for n in NOUNS]
SPEECH_COPIES = 25  # per phrase: 1,000 speech files
TONES = 20
CORRUPT = 5
EMPTY = 5


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    clips = tmp_path_factory.mktemp("clips")
    for k, (phrase, _) in enumerate(PHRASES):
        raw = clips / f"{k}.wav"
        subprocess.run(["espeak-ng", "-s", "170", "-w", str(raw), phrase], check=True)
        for copy in range(SPEECH_COPIES):
            folder = root / f"group{copy % 5}"
            folder.mkdir(exist_ok=True)
            shutil.copyfile(raw, folder / f"c{copy:03d}-p{k:02d}.wav")  # sorted: 40 different clips in a row
    rng = np.random.default_rng(7)
    for t in range(TONES):
        seconds = rng.uniform(0.5, 2.0)
        tone = 0.2 * np.sin(2 * np.pi * rng.uniform(200, 800) * np.arange(int(seconds * RATE)) / RATE)
        soundfile.write(root / f"tone{t:02d}.flac", tone.astype(np.float32), RATE)
    for c in range(CORRUPT):
        (root / f"corrupt{c}.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(c * 10)))
    for e in range(EMPTY):
        (root / f"empty{e}.mp3").write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def model() -> WhisperTranscriber:
    return load_transcriber(load_settings(None, env={}))


def expected_word(path: str) -> str | None:
    name = Path(path).name
    return PHRASES[int(name[6:8])][1] if name.startswith("c") and name[4:6] == "-p" else None


def test_thousand_files_with_resume(corpus: Path, model: WhisperTranscriber, tmp_path: Path) -> None:
    settings = load_settings(None, env={"STREAM_APP_PARALLEL__MAX_WORKERS": "2"})
    out = tmp_path / "results.jsonl"
    subset = sorted((corpus / "group0").glob("*.wav"))[:60] + sorted(corpus.glob("corrupt*"))

    packed = PackingPolicy(pack=True)  # what this corpus measures: packed short clips keep their words
    first = transcribe_batch(subset, settings=settings, output=out, transcriber=model, packing=packed)
    assert (first.total, first.succeeded, first.failed, first.skipped) == (65, 60, 5, 0)

    second = transcribe_batch([corpus], settings=settings, output=out, transcriber=model, packing=packed)
    total = len(PHRASES) * SPEECH_COPIES + TONES + CORRUPT + EMPTY
    assert second.total == total
    assert second.skipped == 60  # succeeded in the first run; the corrupt ones are tried again
    assert second.failed == CORRUPT + EMPTY
    assert second.succeeded == total - 60 - CORRUPT - EMPTY
    assert second.windows < second.succeeded / 5  # short files shared windows
    assert second.audio_seconds > 0 and second.rtx > 0

    summary = orjson.loads((tmp_path / "results.jsonl.summary.json").read_bytes())
    assert {k: summary[k] for k in ("total", "succeeded", "failed", "skipped")} == {
        "total": total,
        "succeeded": second.succeeded,
        "failed": CORRUPT + EMPTY,
        "skipped": 60,
    }

    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    latest = {r["path"]: r for r in records}
    assert len(latest) == total
    failures = {Path(p).name: r["error"] for p, r in latest.items() if r["status"] == "failed"}
    assert sorted(failures) == sorted(
        [f"corrupt{c}.wav" for c in range(CORRUPT)] + [f"empty{e}.mp3" for e in range(EMPTY)]
    )
    assert all(failures.values())
    speech = [(r["text"].lower(), expected_word(p)) for p, r in latest.items() if expected_word(p)]
    heard = sum(1 for text, word in speech if word and word in text)
    assert len(speech) == len(PHRASES) * SPEECH_COPIES
    print(f"packed clips that kept their key word: {heard} of {len(speech)}")
    assert heard >= 0.8 * len(speech), f"only {heard} of {len(speech)} packed clips kept their key word"
