"""The model a batch run uses when the caller brings none: the configured Whisper, loaded locally."""

from __future__ import annotations

from stream_app.config import Settings
from stream_app.inference.registry import build_transcriber, model_key
from stream_app.inference.transcriber import WhisperTranscriber


def load_transcriber(settings: Settings) -> WhisperTranscriber:
    """Load ``optimization.model`` at the configured precision on the configured device (same as the worker)."""
    return build_transcriber(settings, model_key(settings))
