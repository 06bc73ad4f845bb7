"""The model a batch run uses when the caller brings none: the configured Whisper, loaded locally."""

from __future__ import annotations

import logging

from stream_app.config import Settings, expand_path
from stream_app.inference.models import resolve_model
from stream_app.inference.precision import resolve_precision
from stream_app.inference.transcriber import WhisperTranscriber

log = logging.getLogger(__name__)


def load_transcriber(settings: Settings) -> WhisperTranscriber:
    """Load ``optimization.model`` at the configured precision on the configured device."""
    opt = settings.optimization
    path = resolve_model(opt.model, expand_path(opt.model_cache_dir))
    precision, note = resolve_precision(opt.default_precision, opt.device)
    if note:
        log.warning("%s", note)
    return WhisperTranscriber(
        path,
        model_name=opt.model,
        precision=precision,
        device=opt.device,
        device_index=opt.device_index,
        cpu_threads=settings.parallel.intra_threads,
        num_workers=settings.parallel.inter_threads,
        language=settings.streaming.language,
        beam_size=settings.streaming.beam_size,
        vad=settings.streaming.vad,
    )
