"""Precision names, what each device supports, the fallback order, and when to escalate a window.

Names are CTranslate2 compute types. ``resolve_precision`` checks the request against
``ctranslate2.get_supported_compute_types(device)`` and, when it is not supported, walks the
documented fallback list (``FALLBACKS``) and says what it chose and why. ``int4`` is rejected:
CTranslate2 has no 4-bit path for Whisper, and a silent substitute would hide that.

Adaptive precision climbs the device's ladder (``LADDERS``) one step at a time, up to a ceiling,
for windows that ``should_escalate`` flags.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import ctranslate2

from stream_app.inference.exceptions import DeviceUnavailable, PrecisionError
from stream_app.inference.types import WindowTranscript

PRECISIONS: tuple[str, ...] = (
    "float32",
    "float16",
    "bfloat16",
    "int8",
    "int8_float16",
    "int8_float32",
    "int8_bfloat16",
)
ALIASES: dict[str, str] = {
    "fp32": "float32",
    "fp16": "float16",
    "bf16": "bfloat16",
    "int8_fp16": "int8_float16",
    "int8_fp32": "int8_float32",
    "int8_bf16": "int8_bfloat16",
}
NO_WHISPER_PATH: frozenset[str] = frozenset({"int4", "int4_float16", "int4_float32", "awq", "gptq"})

# When a precision is not supported on the device, the first supported entry of its list is used.
# The order keeps the weight format first (int8 stays int8), then gives up speed for accuracy.
FALLBACKS: dict[str, tuple[str, ...]] = {
    "float32": ("float32",),
    "float16": ("float16", "float32"),
    "bfloat16": ("bfloat16", "float32"),
    "int8": ("int8", "int8_float32", "float32"),
    "int8_float32": ("int8_float32", "int8", "float32"),
    "int8_float16": ("int8_float16", "int8_float32", "int8", "float16", "float32"),
    "int8_bfloat16": ("int8_bfloat16", "int8_float32", "int8", "bfloat16", "float32"),
}

# Accuracy rank: higher is closer to float32. On CPU CTranslate2 runs `int8` as int8 weights with
# float32 activations, which is `int8_float32`, so both share a rank and escalation skips the twin.
RANK: dict[str, int] = {
    "int8_bfloat16": 0,
    "int8_float16": 1,
    "int8": 2,
    "int8_float32": 2,
    "bfloat16": 3,
    "float16": 4,
    "float32": 5,
}

# The steps adaptive precision climbs, cheapest first, per device kind.
LADDERS: dict[str, tuple[str, ...]] = {
    "cpu": ("int8", "int8_float32", "float32"),
    "cuda": ("int8_float16", "float16", "float32"),
}


def normalize_precision(name: str) -> str:
    """Return the canonical precision name for a name or alias.

    Raises:
        PrecisionError: The name is unknown, or is a 4-bit type that CTranslate2 cannot run for Whisper.
    """
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key in NO_WHISPER_PATH:
        raise PrecisionError(
            f"precision {name!r} is not available: CTranslate2 has no 4-bit (or AWQ/GPTQ) path for Whisper "
            f"models; the smallest is int8 (choose one of {', '.join(PRECISIONS)})"
        )
    if key not in PRECISIONS:
        raise PrecisionError(
            f"unknown precision {name!r}: choose one of {', '.join(PRECISIONS)} (aliases {', '.join(sorted(ALIASES))})"
        )
    return key


def device_kind(device: str) -> str:
    """Map ``auto`` to ``cuda`` when a CUDA device is visible, else ``cpu``; pass the others through."""
    if device == "auto":
        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if device not in LADDERS:
        raise DeviceUnavailable(f"unknown device {device!r}: use cpu, cuda or auto")
    return device


def supported_precisions(device: str) -> frozenset[str]:
    """Ask CTranslate2 which compute types the device runs.

    Raises:
        DeviceUnavailable: The device cannot be used here (for example CUDA without a GPU or driver).
    """
    kind = device_kind(device)
    try:
        types = ctranslate2.get_supported_compute_types(kind)
    except (RuntimeError, ValueError) as exc:
        raise DeviceUnavailable(f"device {kind!r} is not usable by CTranslate2 here: {exc}") from exc
    return frozenset(str(t) for t in types)


def resolve_precision(
    requested: str, device: str, *, supported: Collection[str] | None = None
) -> tuple[str, str | None]:
    """Choose the precision to load: the request if the device supports it, else its first supported fallback.

    Args:
        requested: A precision name or alias.
        device: ``cpu``, ``cuda`` or ``auto``.
        supported: The device's compute types; asked from CTranslate2 when omitted (tests pass a set).

    Returns:
        The precision and a note that explains a fallback (None when the request was used as is).
    """
    name = normalize_precision(requested)
    available = frozenset(supported) if supported is not None else supported_precisions(device)
    if name in available:
        return name, None
    for candidate in FALLBACKS[name]:
        if candidate in available:
            note = (
                f"precision {name} is not supported on {device} (supported: {', '.join(sorted(available))}); "
                f"using {candidate} instead"
            )
            return candidate, note
    raise PrecisionError(
        f"precision {name} and its fallbacks {', '.join(FALLBACKS[name][1:])} are not supported on {device}"
    )


def next_precision(current: str, ceiling: str, device: str, *, supported: Collection[str] | None = None) -> str | None:
    """Return the next, more accurate precision to re-run a window at, or None at the ceiling.

    Only supported steps of the device's ladder count, and a step must be strictly more accurate
    than ``current`` (so ``int8`` on CPU goes straight to ``float32``: ``int8_float32`` is its twin).
    """
    current_name, ceiling_name = normalize_precision(current), normalize_precision(ceiling)
    available = frozenset(supported) if supported is not None else supported_precisions(device)
    for step in LADDERS[device_kind(device)]:
        if step in available and RANK[current_name] < RANK[step] <= RANK[ceiling_name]:
            return step
    return None


@dataclass(frozen=True)
class EscalationRule:
    """When a window's result is too unsure to keep at the precision that made it.

    Escalate when the duration-weighted average log-probability is below ``logprob_threshold`` or
    the compression ratio is above ``compression_ratio_threshold`` (repetition loops), unless the
    window is silence: ``no_speech_prob`` at or above ``no_speech_threshold``, or VAD skipped it.
    Silence is excluded because its low log-probability says nothing about precision; re-running
    it costs a full pass and cannot help.
    """

    logprob_threshold: float = -0.8
    compression_ratio_threshold: float = 2.4
    no_speech_threshold: float = 0.6

    def should_escalate(self, result: WindowTranscript) -> bool:
        """Apply the rule to one window's result."""
        if result.skipped_silence or result.no_speech_prob >= self.no_speech_threshold:
            return False
        return result.avg_logprob < self.logprob_threshold or (
            result.compression_ratio > self.compression_ratio_threshold
        )
