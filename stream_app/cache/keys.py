"""Content-addressed cache keys: the same audio and options give the same key on every replica."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

KEY_SCHEME = b"stream-app/transcript-key/v1"
SAMPLE_RATE = 16_000


def cache_key(
    samples: npt.NDArray[np.float32],
    *,
    model: str,
    precision: str,
    language: str,
    options: Mapping[str, Any],
    code_version: str,
) -> str:
    """Hash a window's 16 kHz float32 PCM and everything that changes its transcript.

    The PCM is hashed as little-endian float32 whatever the caller's dtype or byte order, and the
    rest as canonical JSON (sorted keys), so two replicas agree on the key byte for byte.

    Args:
        samples: mono 16 kHz audio of the window.
        model: model name or path, as it identifies the weights.
        precision: compute type the model runs at.
        language: decoding language.
        options: decoding options that change the output (beam size, thresholds, VAD...).
        code_version: version of the code that shapes the cached output (bump it to invalidate).

    Returns:
        A 64-character hex digest (blake2b, 32 bytes).

    Raises:
        ValueError: when ``samples`` is not one-dimensional.
        TypeError: when ``options`` holds a value JSON cannot encode.
    """
    pcm = np.ascontiguousarray(samples, dtype="<f4")
    if pcm.ndim != 1:
        raise ValueError(f"expected mono samples (one dimension), got shape {pcm.shape}")
    meta = orjson.dumps(
        {
            "sample_rate": SAMPLE_RATE,
            "model": model,
            "precision": precision,
            "language": language,
            "options": dict(options),
            "code_version": code_version,
        },
        option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
    )
    digest = hashlib.blake2b(digest_size=32, person=b"stream-app-key")
    digest.update(KEY_SCHEME)
    digest.update(len(meta).to_bytes(8, "little"))
    digest.update(meta)
    digest.update(pcm.size.to_bytes(8, "little"))
    digest.update(pcm.tobytes())
    return digest.hexdigest()
