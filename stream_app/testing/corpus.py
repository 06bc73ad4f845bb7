"""A synthetic speech corpus: espeak-ng voices reading sentences we wrote, with pauses and a noise floor.

Synthetic speech is harder for Whisper than real speech (tiny.en makes 15-25 % WER on it), so it is
for comparing two ways of transcribing the same audio, never for absolute accuracy figures. Files are
cached by their recipe, so a second run costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf

from stream_app.audio.files import decode_audio_file

SAMPLE_RATE = 16_000

SENTENCES = (
    "The morning train left the station a few minutes late because of the fog.",
    "Please remember to close the windows before you leave the office tonight.",
    "Our team finished the report and sent it to the customer on Friday.",
    "The river was calm and the boats moved slowly toward the harbour.",
    "She opened the old book and found a letter hidden between the pages.",
    "We need more time to test the new system before it goes live.",
    "The children played in the garden until the sun went down.",
    "A strong wind blew across the field and bent the tall grass.",
    "He bought fresh bread, a little cheese and a bottle of milk.",
    "The meeting will start at the usual time in the large room upstairs.",
    "Scientists measured the temperature of the lake every single week.",
    "The small dog barked at the postman and then ran back inside.",
    "Good software is tested often and changed in small careful steps.",
    "The museum keeps paintings that are older than the city itself.",
    "After the storm the roads were covered with leaves and broken branches.",
    "They walked along the beach and talked about their summer plans.",
    "The doctor asked him to rest for a few days and drink plenty of water.",
    "Every evening the farmer counted the sheep before closing the gate.",
    "The pilot told the passengers that the flight would land early.",
    "Fresh snow covered the mountains and the valley looked bright and quiet.",
    "The library is open every day except Sunday and public holidays.",
    "Our neighbours planted apple trees along the edge of their land.",
    "The engineer explained how the bridge was built over the wide river.",
    "At the end of the day the market was empty and the streets were quiet.",
)

VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb-scotland", "en-029", "en-us+m3")
SPEEDS = (150, 165, 175, 185)


@dataclass(frozen=True)
class CorpusItem:
    """One file of the corpus and what is said in it.

    ``silences`` are the long silences in it, ``(start, end)`` in seconds, so a benchmark can check
    that no word is transcribed there.
    """

    path: Path
    reference: str
    duration: float
    voice: str
    silences: tuple[tuple[float, float], ...] = ()


def require_tools() -> None:
    """Fail with a clear message when espeak-ng or sox is missing."""
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"the synthetic corpus needs {', '.join(missing)} (apt-get install espeak-ng sox)")


def speak(text: str, voice: str, speed: int) -> np.ndarray:
    """Synthesise one sentence as 16 kHz mono float32."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True)
        return decode_audio_file(wav)


def build_item(
    path: Path,
    sentences: list[str],
    voice: str,
    speed: int,
    *,
    pause_seconds: tuple[float, ...] = (0.6, 1.2, 0.4),
    long_silence_after: int | None = None,
    long_silence_seconds: float = 8.0,
    noise_level: float = 0.003,
    seed: int = 0,
) -> CorpusItem:
    """Write one file: sentences separated by pauses (and optionally one long silence), over a noise floor."""
    rng = np.random.default_rng(seed)
    pieces: list[np.ndarray] = [np.zeros(int(0.3 * SAMPLE_RATE), np.float32)]
    silences: list[tuple[float, float]] = []
    position = pieces[0].shape[0]
    for i, sentence in enumerate(sentences):
        pieces.append(speak(sentence, voice, speed) * 0.8)
        position += pieces[-1].shape[0]
        pause = pause_seconds[i % len(pause_seconds)]
        if long_silence_after is not None and i == long_silence_after:
            pause = long_silence_seconds
        pieces.append(np.zeros(int(pause * SAMPLE_RATE), np.float32))
        if long_silence_after is not None and i == long_silence_after:
            silences.append((position / SAMPLE_RATE, (position + pieces[-1].shape[0]) / SAMPLE_RATE))
        position += pieces[-1].shape[0]
    audio = np.concatenate(pieces)
    audio = audio + np.asarray(rng.normal(0.0, noise_level, audio.shape[0]), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")
    return CorpusItem(path, " ".join(sentences), audio.shape[0] / SAMPLE_RATE, voice, tuple(silences))


def build_corpus(
    folder: Path, *, files: int = 4, sentences_per_file: int = 6, long_silence: bool = True, seed: int = 7
) -> list[CorpusItem]:
    """Build (or reuse) a corpus of ``files`` files; the first one holds a long silence when asked."""
    require_tools()
    recipe = {"files": files, "per_file": sentences_per_file, "silence": long_silence, "seed": seed, "v": 3}
    digest = hashlib.sha1(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    root = folder / f"corpus-{digest}"
    manifest = root / "manifest.json"
    if manifest.is_file():
        rows = json.loads(manifest.read_text())
        return [_item_from_row(root, r) for r in rows]
    rng = np.random.default_rng(seed)
    items = []
    for index in range(files):
        chosen = [SENTENCES[int(i)] for i in rng.choice(len(SENTENCES), size=sentences_per_file, replace=False)]
        voice = VOICES[index % len(VOICES)]
        speed = SPEEDS[index % len(SPEEDS)]
        silence_at = sentences_per_file // 2 if long_silence and index == 0 else None
        items.append(
            build_item(
                root / f"item-{index:03d}.wav",
                chosen,
                voice,
                speed,
                long_silence_after=silence_at,
                seed=seed + index,
            )
        )
    manifest.write_text(json.dumps([_item_to_row(i) for i in items]))
    return items


def _item_to_row(item: CorpusItem) -> dict[str, object]:
    return {
        "file": item.path.name,
        "reference": item.reference,
        "duration": item.duration,
        "voice": item.voice,
        "silences": [list(span) for span in item.silences],
    }


def _item_from_row(root: Path, row: dict[str, Any]) -> CorpusItem:
    spans = row.get("silences") or []
    return CorpusItem(
        root / str(row["file"]),
        str(row["reference"]),
        float(row["duration"]),
        str(row["voice"]),
        tuple((float(a), float(b)) for a, b in spans),
    )


def words_in_spans(
    words: Iterable[tuple[float, float]], spans: Sequence[tuple[float, float]], *, margin: float = 0.25
) -> int:
    """Count words (``(start, end)`` seconds) whose middle lies inside a span shrunk by ``margin`` at each end.

    Whisper's word timestamps are off by a few hundred milliseconds, so a sentence's last word that
    runs a little into the following silence is not counted as a word *in* the silence.
    """
    count = 0
    for start, end in words:
        middle = (start + end) / 2.0
        if any(a + margin <= middle <= b - margin for a, b in spans):
            count += 1
    return count


def cycle_audio(
    pieces: Sequence[npt.NDArray[np.float32]],
    total_seconds: float,
    slice_seconds: float,
    *,
    pause_seconds: float = 1.5,
) -> Iterator[npt.NDArray[np.float32]]:
    """Yield ``total_seconds`` of the pieces played in a loop with pauses between them, ``slice_seconds`` at a time.

    Hours of stream audio from minutes of corpus: only one slice is in memory at a time, and the
    slices joined are exactly the looped audio, whatever the slice length.

    Raises:
        ValueError: the pieces and pause hold no samples, or the slice length is not positive.
    """
    if slice_seconds <= 0:
        raise ValueError(f"slice_seconds must be positive, got {slice_seconds}")
    pause = np.zeros(round(pause_seconds * SAMPLE_RATE), np.float32)
    loop = [part for piece in pieces for part in (np.asarray(piece, np.float32), pause) if part.shape[0]]
    if not loop:
        raise ValueError("nothing to loop: the pieces and the pause are empty")
    total = round(total_seconds * SAMPLE_RATE)
    size = max(1, round(slice_seconds * SAMPLE_RATE))
    produced, index, inside = 0, 0, 0
    while produced < total:
        want = min(size, total - produced)
        out: list[npt.NDArray[np.float32]] = []
        filled = 0
        while filled < want:
            part = loop[index % len(loop)]
            take = min(want - filled, part.shape[0] - inside)
            out.append(part[inside : inside + take])
            filled += take
            inside += take
            if inside >= part.shape[0]:
                index, inside = index + 1, 0
        produced += want
        yield np.concatenate(out)
