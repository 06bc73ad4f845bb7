"""A recording as `../shared/data/repro/make_speech.sh` makes one: sentences, formula pauses, a noise floor.

One sentence per line of a text, spoken by espeak-ng, each followed by a pause of ``0.4 + ((7 n) mod 13)
/ 10`` seconds, joined and mixed with a faint white noise that sox makes the same way on every run
(``-R``). The issue that showed the last sentence of such a recording lost used this recipe; the tests
use it to show the sentence is final now.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path


def make_speech(text: Path, voice: str, speed: int, out: Path) -> Path:
    """Write ``out`` (16 kHz mono s16 WAV) from ``text`` spoken by ``voice`` at ``speed`` words a minute."""
    missing = [tool for tool in ("espeak-ng", "sox", "soxi") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"making speech needs {', '.join(missing)} (apt-get install espeak-ng sox)")
    lines = [line.strip() for line in text.read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        parts = []
        for n, line in enumerate(lines):
            raw, part = Path(tmp) / f"s{n}.raw.wav", Path(tmp) / f"s{n}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), line], check=True)
            pause = f"{0.4 + ((n * 7) % 13) / 10:.1f}"
            subprocess.run(
                ["sox", "-R", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(part), "pad", "0", pause],
                check=True,
                capture_output=True,
            )
            parts.append(str(part))
        speech, noise = Path(tmp) / "speech.wav", Path(tmp) / "noise.wav"
        subprocess.run(["sox", "-R", *parts, str(speech)], check=True, capture_output=True)
        length = subprocess.run(["soxi", "-D", str(speech)], check=True, capture_output=True, text=True).stdout.strip()
        subprocess.run(
            [
                "sox",
                "-R",
                "-n",
                "-r",
                "16000",
                "-c",
                "1",
                "-b",
                "16",
                str(noise),
                "synth",
                length,
                "whitenoise",
                "vol",
                "0.004",
            ],
            check=True,
            capture_output=True,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["sox", "-R", "-m", str(speech), str(noise), "-b", "16", str(out)], check=True, capture_output=True
        )
    return out
