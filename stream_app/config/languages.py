"""Which values ``streaming.language`` takes, and what each means for the model (pure, no model loaded).

Whisper knows the languages below by code. ``auto`` (or an empty value) asks a multilingual model to
detect the language of each window; an English-only model (``tiny.en``) transcribes English only.
"""

from __future__ import annotations

from stream_app.config.exceptions import ConfigError

# Whisper's language codes, as faster-whisper's tokenizer lists them (a unit test keeps them equal).
WHISPER_LANGUAGES = (
    "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy", "da", "de",
    "el", "en", "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "haw", "he", "hi", "hr", "ht",
    "hu", "hy", "id", "is", "it", "ja", "jw", "ka", "kk", "km", "kn", "ko", "la", "lb", "ln", "lo", "lt",
    "lv", "mg", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "ne", "nl", "nn", "no", "oc", "pa", "pl",
    "ps", "pt", "ro", "ru", "sa", "sd", "si", "sk", "sl", "sn", "so", "sq", "sr", "su", "sv", "sw", "ta",
    "te", "tg", "th", "tk", "tl", "tr", "tt", "uk", "ur", "uz", "vi", "yi", "yo", "zh", "yue",
)  # fmt: skip
DETECT = ("auto", "")  # values that mean: detect the language of each window


def check_language(key: str, value: str) -> str:
    """Return the language code (lower case), ``auto`` for detection; refuse anything Whisper does not know.

    Raises:
        ConfigError: the value is neither a Whisper language code nor ``auto`` / empty.
    """
    code = value.strip().lower()
    if code in DETECT:
        return "auto"
    if code not in WHISPER_LANGUAGES:
        raise ConfigError(
            key,
            value,
            "not a language Whisper knows; use 'auto' (or \"\") to detect it with a multilingual model, "
            f"or one of: {', '.join(WHISPER_LANGUAGES)}",
        )
    return code


def spoken_language(value: str) -> str | None:
    """Return the code to decode with, or None to detect it per window (``auto`` or empty)."""
    code = value.strip().lower()
    return None if code in DETECT else code


def check_model_language(model: str, multilingual: bool | None, language: str) -> None:
    """Refuse a language an English-only model cannot serve; ``multilingual`` None means unknown (a folder).

    Raises:
        ConfigError: ``language`` is not English, or asks for detection, on an English-only model.
    """
    if multilingual is not False or language == "en":
        return
    wanted = "detection ('auto')" if language == "auto" else f"language {language!r}"
    raise ConfigError(
        "streaming.language",
        language,
        f'model {model} is English-only: {wanted} needs a multilingual model (optimization.model = "base" '
        'or a multilingual model folder); with tiny.en use language = "en"',
    )
