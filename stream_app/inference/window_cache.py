"""The transcript cache as the engine uses it: a window's key, look-up before the pool, store after.

The key covers everything that changes a window's transcript: its samples, the model's weights (a
hash of their files, not only the name: a folder updated in place gets new keys), precision, device,
language, the decoding options, the encoder context and the window's prompt, and the code that made it
(`decoder_fingerprint`: the inference package's and the entry codec's sources and the runtime's
versions, so a release that decodes differently never reads an older release's entries). Cache errors are
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
import functools
import hashlib
import logging
from importlib import metadata
from pathlib import Path
from typing import Any

from stream_app.cache import TranscriptCache, cache_key, codec
from stream_app.cache.metrics import CACHE_BYPASSED, CACHE_DECODE_LOOKUPS
from stream_app.config import Settings
from stream_app.config.settings import expand_path
from stream_app.inference.exceptions import ModelNotFound
from stream_app.inference.models import resolve_model
from stream_app.inference.registry import ModelKey, encoder_context
from stream_app.inference.types import DecodeKind, WindowJob, WindowTranscript

log = logging.getLogger(__name__)

# The key's scheme; the code's own version is `decoder_fingerprint`, computed, so no change is forgotten.
# 3: decoder prefix, continuation rounds, undecoded speech; 4: free decodes of final words; 5: repeats said again
# kept; 6: with the decoder's fingerprint, the weights' hash and the device
CODE_VERSION = "6"
RUNTIME_PACKAGES = ("ctranslate2", "faster-whisper", "onnxruntime", "numpy", "tokenizers")
WEIGHT_FILES = ("model.bin", "config.json", "vocabulary.json", "vocabulary.txt", "tokenizer.json")


def decoder_sources() -> list[Path]:
    """Return the source files whose code shapes a cached result: the inference package and the entry codec."""
    return [*sorted(Path(__file__).parent.glob("*.py")), Path(codec.__file__)]


@functools.cache
def decoder_fingerprint() -> str:
    """Hash what makes a window's result besides its inputs: the inference code, the entry codec, the runtime.

    Every source file of `stream_app.inference` and `stream_app.cache.codec`, and the installed versions of
    `RUNTIME_PACKAGES`. A release that changes any of them (a rule, a guard, a kernel) gets its own keys.
    """
    digest = hashlib.blake2b(digest_size=12, person=b"stream-app-code")
    for source in decoder_sources():
        digest.update(f"{source.parent.name}/{source.name}\0".encode())
        digest.update(source.read_bytes())
    for package in RUNTIME_PACKAGES:
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            version = "-"
        digest.update(f"{package}={version}\0".encode())
    return digest.hexdigest()


def weights_fingerprint(folder: Path) -> str:
    """Hash the model's weight files in ``folder`` (`WEIGHT_FILES`; done once per load, `WindowCache.prepare`)."""
    digest = hashlib.blake2b(digest_size=12, person=b"stream-app-model")
    for name in WEIGHT_FILES:
        path = folder / name
        if not path.is_file():
            continue
        digest.update(f"{name}\0".encode())
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


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
        self._models = expand_path(settings.optimization.model_cache_dir)
        self._weights_of: dict[str, str] = {}  # model name -> hash of the weights it was loaded from

    def prepare(self, model: ModelKey) -> None:
        """Hash ``model``'s weights as it loads (blocking; the engine calls it then), for the keys of its windows.

        Each load hashes again, so a folder updated in place and loaded anew gets new keys; the keys of a
        window never read the files (a look-up and a store per decode would).
        """
        self._weights_of[model.model] = self._hash_weights(model)

    def _weights(self, model: ModelKey) -> str:
        """Return the hash of ``model``'s weights (hashed now if `prepare` was not called for it)."""
        found = self._weights_of.get(model.model)
        if found is None:
            found = self._weights_of[model.model] = self._hash_weights(model)
        return found

    def _hash_weights(self, model: ModelKey) -> str:
        """Hash ``model``'s weight files, or return its name where no local folder holds it (a test's model)."""
        try:
            return weights_fingerprint(resolve_model(model.model, self._models))
        except (ModelNotFound, OSError):
            return f"name:{model.model}"

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
        options["device"] = model.device
        options["weights"] = self._weights(model)
        if job.prompt:
            options["prompt"] = job.prompt
        if job.prefix or job.prefix_end:
            options["prefix"] = [job.prefix, job.prefix_end]
        options["kind"] = job.kind.value
        if job.speech is not None:
            options["speech"] = [[a, b] for a, b in job.speech]  # as the decode reads them: not rounded
        return cache_key(
            job.samples,
            model=model.model,
            precision=model.precision,
            language=self._language,
            options=options,
            code_version=f"{CODE_VERSION}:{decoder_fingerprint()}",
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
