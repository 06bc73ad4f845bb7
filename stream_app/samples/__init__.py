"""Sample audio shipped with the package: what the demo streams and the tests transcribe."""

from __future__ import annotations

from pathlib import Path

SAMPLES_DIR = Path(__file__).parent
JFK_FLAC = SAMPLES_DIR / "jfk.flac"
JFK_REFERENCE = (
    "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
)
