"""The transcript cache as the engine uses it: a window's key, look-up before the pool, store after.

The key covers everything that changes a window's transcript: its samples, model, precision,
language, the decoding options, the encoder context and the window's prompt. Cache errors are
logged and become misses: the model answers instead. These calls block (disk, Redis), so the engine
runs them in a thread, never on the event loop and never inside an inference thread.

Previews are neither looked up nor stored (`WindowCache.admits`): which previews a stream runs, and
where they end, depends on how much audio had arrived when its step ran and on whether the pool had
room, so a repeat of the same audio asks for other previews. Looking them up would cost a round trip
per preview for (almost) no hits, and storing them would fill the tiers with entries no repeat asks
for. Every other decode (ticks, pauses and cuts, files) is a function of the audio and the stream's
stored state (which ticks run can depend on load, `streaming.skip_missed_ticks`, but each is a function
of its inputs), so a repeat of the same decode meets its key: ``stream_app_cache_decode_lookups_total`` counts those by
kind and result, ``stream_app_cache_bypassed_total`` the previews that went past the cache.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from stream_app.cache import TranscriptCache, cache_key
from stream_app.cache.metrics import CACHE_BYPASSED, CACHE_DECODE_LOOKUPS
from stream_app.config import Settings
from stream_app.inference.registry import ModelKey, encoder_context
from stream_app.inference.types import DecodeKind, WindowJob, WindowTranscript

log = logging.getLogger(__name__)

# Bump when a change alters what a cached window result would contain (decoding options, word timing).
# 3: decoder prefix, continuation rounds, undecoded speech; 4: free decodes of final words; 5: repeats said again kept
CODE_VERSION = "5"


def decoding_options(settings: Settings) -> dict[str, Any]:
    """Return the configured options that change a window's transcript (besides model, precision and language)."""
    streaming = settings.streaming
    return {
        "beam_size": streaming.beam_size,
        "vad": streaming.vad,
        "no_speech_threshold": streaming.no_speech_threshold,
        "log_prob_threshold": streaming.log_prob_threshold,
        "compression_ratio_threshold": streaming.compression_ratio_threshold,
        "encoder_context": encoder_context(settings).describe(),
    }


class WindowCache:
    """Looks windows up in, and stores them into, a tiered transcript cache."""

    def __init__(self, cache: TranscriptCache, settings: Settings) -> None:
        """Use ``cache`` with the keys ``settings`` define."""
        self.cache = cache
        self._language = settings.streaming.language
        self._options = decoding_options(settings)

    @staticmethod
    def admits(job: WindowJob) -> bool:
        """Whether ``job`` goes through the cache at all; a preview does not (counted as bypassed).

        See the module docstring: a preview's key depends on step timing, so a repeat would not meet it.
        """
        if job.kind is DecodeKind.PREVIEW:
            CACHE_BYPASSED.labels(job.kind.value).inc()
            return False
        return True

    def key(self, model: ModelKey, job: WindowJob) -> str:
        """Return the content address of ``job``'s transcript on ``model``.

        Besides the samples: the prompt, the decoder prefix (and where its words end), what the decode is
        for (a tick drops what a cut re-runs) and the speech map it came with (it decides continuations
        and gaps). All of them are functions of the stream's audio and stored state, so a replay of the
        same audio meets the same keys.
        """
        options = dict(self._options)
        if job.prompt:
            options["prompt"] = job.prompt
        if job.prefix or job.prefix_end:
            options["prefix"] = [job.prefix, round(job.prefix_end, 3)]
        options["kind"] = job.kind.value
        if job.speech is not None:
            options["speech"] = [[round(a, 3), round(b, 3)] for a, b in job.speech]
        return cache_key(
            job.samples,
            model=model.model,
            precision=model.precision,
            language=self._language,
            options=options,
            code_version=CODE_VERSION,
        )

    def lookup(self, model: ModelKey, job: WindowJob) -> WindowTranscript | None:
        """Return the stored transcript of ``job`` re-timed to its start, or None (a miss or a cache failure)."""
        try:
            hit = self.cache.lookup(self.key(model, job), window_start=job.start)
        except Exception:
            log.warning("cache look-up failed; the model answers instead", exc_info=True)
            hit = None
        CACHE_DECODE_LOOKUPS.labels(job.kind.value, "miss" if hit is None else "hit").inc()
        return None if hit is None else dataclasses.replace(hit, cached=True)

    def store(self, model: ModelKey, job: WindowJob, result: WindowTranscript) -> None:
        """Store a freshly computed transcript (cache failures are logged, never raised).

        A tick the guards rejected is stored too: its key names what the decode was for, so the same
        audio as a cut still gets a full decode, and a replay of the tick gets the same rejection.
        """
        try:
            self.cache.store(self.key(model, job), result, window_start=job.start)
        except Exception:
            log.warning("cache store failed", exc_info=True)
