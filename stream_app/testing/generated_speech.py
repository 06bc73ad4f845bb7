"""Recordings nobody tuned the service on: sentences built from a grammar, spoken by espeak-ng.

Each recording is a function of its seed: which sentences (subjects, verbs, objects, numbers, names,
questions, short replies), the voice and speed, the pauses between sentences (0.2 s to 2.5 s, the way
people pause), the loudness of each sentence (quiet speakers included), and, in some, a long silence.
Files are cached by their recipe. The property tests and ``bench accuracy`` read them; the project's
fixed corpus (`stream_app.testing.corpus`) is for comparing runs, these are for catching what it hides.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

from stream_app.audio.files import decode_audio_file
from stream_app.testing.corpus import SAMPLE_RATE, require_tools, speak

VOICES = ("en-us", "en-gb", "en-gb-x-rp", "en-us+f3", "en-gb-scotland", "en-029", "en-us+m3", "en-gb+f4")
SPEEDS = (140, 150, 160, 170, 180, 190)

_SUBJECTS = (
    "the driver",
    "my sister",
    "our new manager",
    "a tall man in a grey coat",
    "the nurse",
    "everyone in the office",
    "the old dog",
    "Professor Lindqvist",
    "the delivery team",
    "your neighbour",
)
_VERBS = (
    "checked",
    "forgot",
    "painted",
    "carried",
    "ordered",
    "cancelled",
    "repaired",
    "found",
    "sold",
    "described",
)
_OBJECTS = (
    "the blue suitcase",
    "three boxes of apples",
    "the kitchen window",
    "a ticket to Lisbon",
    "the broken heater",
    "forty paper cups",
    "the contract for March",
    "a small wooden chair",
    "the morning train",
    "the garden fence",
)
_PLACES = (
    "before lunch",
    "near the station",
    "on Friday evening",
    "after the meeting",
    "at the end of the street",
    "during the storm",
    "in the back room",
    "twice last week",
)
_QUESTIONS = (
    "Could you call me back tomorrow?",
    "Is the parking lot open on Sundays?",
    "Did anyone see where I left my keys?",
    "What time does the pharmacy close?",
    "Can we move the appointment to Monday?",
)
_REPLIES = ("Yes.", "No, not yet.", "Okay, thank you.", "Right.", "Sure, no problem.", "Sorry, say that again?")
_NUMBERS = ("twelve", "twenty five", "ninety", "three hundred", "seven", "fifteen")


@dataclass(frozen=True)
class Recording:
    """One generated recording: where it is, what is said, and where it is silent for long."""

    path: Path
    sentences: tuple[str, ...]
    duration: float
    voice: str
    speed: int
    long_silences: tuple[tuple[float, float], ...]

    @property
    def reference(self) -> str:
        """Everything said, in order."""
        return " ".join(self.sentences)

    def samples(self) -> npt.NDArray[np.float32]:
        """Read the recording as 16 kHz mono float32."""
        return decode_audio_file(self.path)


def sentence(rng: np.random.Generator) -> str:
    """One sentence of the grammar."""
    kind = rng.integers(0, 10)
    if kind < 5:
        text = f"{_pick(rng, _SUBJECTS)} {_pick(rng, _VERBS)} {_pick(rng, _OBJECTS)} {_pick(rng, _PLACES)}."
        return text[0].upper() + text[1:]
    if kind < 7:
        return f"We need {_pick(rng, _NUMBERS)} of them by {_pick(rng, _PLACES).split()[-1]}."
    if kind < 9:
        return _pick(rng, _QUESTIONS)
    return _pick(rng, _REPLIES)


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(0, len(options)))]


def recording(folder: Path, seed: int, *, min_seconds: float = 10.0, max_seconds: float = 120.0) -> Recording:
    """Build (or reuse) the recording of ``seed``: between ``min_seconds`` and about ``max_seconds`` long."""
    require_tools()
    recipe = {"seed": seed, "min": min_seconds, "max": max_seconds, "v": 1}
    digest = hashlib.sha1(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    path = folder / f"gen-{seed:04d}-{digest}.wav"
    manifest = path.with_suffix(".json")
    if path.is_file() and manifest.is_file():
        row = json.loads(manifest.read_text())
        return Recording(
            path,
            tuple(row["sentences"]),
            float(row["duration"]),
            str(row["voice"]),
            int(row["speed"]),
            tuple((float(a), float(b)) for a, b in row["silences"]),
        )
    rng = np.random.default_rng(seed)
    voice, speed = _pick(rng, VOICES), int(SPEEDS[int(rng.integers(0, len(SPEEDS)))])
    target = float(rng.uniform(min_seconds, max_seconds))
    silence_at = target * float(rng.uniform(0.3, 0.7)) if rng.random() < 0.25 else None
    pieces: list[npt.NDArray[np.float32]] = [np.zeros(round(float(rng.uniform(0.0, 1.5)) * SAMPLE_RATE), np.float32)]
    position = pieces[0].shape[0]
    said: list[str] = []
    silences: list[tuple[float, float]] = []
    while position < min_seconds * SAMPLE_RATE or position + 2 * SAMPLE_RATE < target * SAMPLE_RATE:
        text = sentence(rng)
        loudness = float(rng.choice([0.25, 0.5, 0.8, 0.8, 0.8]))
        pieces.append((speak(text, voice, speed) * loudness).astype(np.float32))
        said.append(text)
        position += pieces[-1].shape[0]
        pause = float(rng.choice([0.2, 0.4, 0.6, 0.9, 1.3, 2.5]))
        if silence_at is not None and position >= silence_at * SAMPLE_RATE:
            pause, silence_at = float(rng.uniform(6.0, 12.0)), None
            silences.append((position / SAMPLE_RATE, position / SAMPLE_RATE + pause))
        pieces.append(np.zeros(round(pause * SAMPLE_RATE), np.float32))
        position += pieces[-1].shape[0]
    audio = np.concatenate(pieces)
    audio = (audio + rng.normal(0.0, 0.002, audio.shape[0])).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")
    row = {
        "sentences": said,
        "duration": audio.shape[0] / SAMPLE_RATE,
        "voice": voice,
        "speed": speed,
        "silences": [list(s) for s in silences],
    }
    manifest.write_text(json.dumps(row))
    return Recording(path, tuple(said), row["duration"], voice, speed, tuple(silences))
