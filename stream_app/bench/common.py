"""What several benchmarks share: a set of generated speech files, the reference model, timed service runs.

The clip set is cheap to make in quantity (``--files 1000``): each distinct espeak-ng utterance is
synthesised once and cached, and every file is a new mix of utterances over its own noise, so no two
files are byte-identical (nothing can be answered from a cache).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from stream_app.clients.transcript import TranscriptAssembler
from stream_app.config import Settings, expand_path
from stream_app.config.languages import spoken_language
from stream_app.testing.corpus import SAMPLE_RATE, SENTENCES, SPEEDS, VOICES, require_tools, speak
from stream_app.testing.service import ServiceHarness
from stream_app.testing.wer import corpus_wer

BENCH_HOME = Path("~/.cache/stream-app/bench").expanduser()


@dataclass(frozen=True)
class Clip:
    """One generated file and what is said in it."""

    path: Path
    reference: str
    duration: float


def make_clips(files: int, seconds: float, *, seed: int = 11, folder: Path = BENCH_HOME) -> list[Clip]:
    """Build (or reuse) ``files`` speech files of about ``seconds`` each: utterances with short pauses."""
    require_tools()
    recipe = {"files": files, "seconds": seconds, "seed": seed, "v": 1}
    digest = hashlib.sha1(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    root = folder / f"clips-{digest}"
    manifest = root / "manifest.json"
    if manifest.is_file():
        rows = json.loads(manifest.read_text())
        return [Clip(root / r["file"], r["reference"], r["duration"]) for r in rows]
    rng = np.random.default_rng(seed)
    plans: list[list[tuple[int, int, int]]] = []
    for _ in range(files):
        plan: list[tuple[int, int, int]] = []
        expected = 0.3
        while expected < seconds or not plan:
            plan.append(
                (int(rng.integers(len(SENTENCES))), int(rng.integers(len(VOICES))), int(rng.integers(len(SPEEDS))))
            )
            expected += 4.0  # a sentence at these speeds lasts about 3.5 to 4.5 s with its pause
        plans.append(plan)
    library = _utterances(folder / "utterances", {u for plan in plans for u in plan})
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, plan in enumerate(plans):
        pieces: list[np.ndarray] = [np.zeros(int(rng.uniform(0.1, 0.5) * SAMPLE_RATE), np.float32)]
        for utterance in plan:
            pieces += [library[utterance] * 0.8, np.zeros(int(rng.uniform(0.3, 0.8) * SAMPLE_RATE), np.float32)]
        audio = np.concatenate(pieces)
        audio = audio + np.asarray(rng.normal(0.0, 0.003, audio.shape[0]), dtype=np.float32)
        name = f"clip-{index:05d}.wav"
        sf.write(root / name, np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")
        reference = " ".join(SENTENCES[u[0]] for u in plan)
        rows.append({"file": name, "reference": reference, "duration": audio.shape[0] / SAMPLE_RATE})
    manifest.write_text(json.dumps(rows))
    return [Clip(root / r["file"], r["reference"], r["duration"]) for r in rows]


def _utterances(folder: Path, wanted: set[tuple[int, int, int]]) -> dict[tuple[int, int, int], np.ndarray]:
    """Synthesise each (sentence, voice, speed) once, in parallel, cached as .npy files."""
    folder.mkdir(parents=True, exist_ok=True)

    def load(key: tuple[int, int, int]) -> np.ndarray:
        path = folder / f"u-{key[0]}-{key[1]}-{key[2]}.npy"
        if path.is_file():
            return np.asarray(np.load(path), dtype=np.float32)
        audio = speak(SENTENCES[key[0]], VOICES[key[1]], SPEEDS[key[2]])
        np.save(path, audio)
        return audio

    keys = sorted(wanted)
    with ThreadPoolExecutor(4) as pool:
        return dict(zip(keys, pool.map(load, keys), strict=True))


def load_reference_model(settings: Settings) -> Any:
    """Load faster-whisper's `WhisperModel` exactly as configured (model, device, precision, threads).

    As `AligningWhisperModel`: the same words, except that a window of under two frames gets none where
    faster-whisper 1.2.1 on ctranslate2 >= 4.8.1 raises an IndexError (the service's model does the same).
    """
    from stream_app.inference.alignment import AligningWhisperModel
    from stream_app.inference.models import resolve_model

    opt = settings.optimization
    return AligningWhisperModel(
        str(resolve_model(opt.model, expand_path(opt.model_cache_dir))),
        device=opt.device,
        device_index=opt.device_index,
        compute_type=opt.default_precision,
        cpu_threads=settings.parallel.intra_threads,
        num_workers=settings.parallel.inter_threads,
        local_files_only=True,
    )


def with_profile(settings: Settings, profile: str) -> Settings:
    """Return ``settings`` with the streaming profile chosen (explicit window durations still override it)."""
    return dataclasses.replace(settings, streaming=dataclasses.replace(settings.streaming, profile=profile))


def without_cache(settings: Settings) -> Settings:
    """Return the settings with every cache tier off: a repeated run measures inference, not look-ups.

    The harness writes the settings it is given to the worker's configuration file, so the worker
    runs exactly these (model, precision, device, windowing) and the in-process reference can too.
    """
    return dataclasses.replace(settings, caching=dataclasses.replace(settings.caching, cache_levels=()))


def whole_file_texts(settings: Settings, paths: Sequence[Path]) -> list[str]:
    """Transcribe each file whole with faster-whisper (`WhisperModel.transcribe`, `reference_options`)."""
    model = load_reference_model(settings)
    options = reference_options(settings)
    texts = []
    for path in paths:
        segments, _ = model.transcribe(str(path), **options)
        texts.append(" ".join(s.text.strip() for s in segments))
    return texts


def reference_options(settings: Settings) -> dict[str, Any]:
    """Return the decoding options that make `WhisperModel.transcribe` decode as the service does.

    Same language, beam, thresholds, temperatures (the service's bounded fallback), no previous text
    as a prompt, Silero VAD with the service's 500 ms minimum silence, word timestamps. What still
    differs is what a benchmark's table says: the service's windows (cut at pauses, not 30 s chunks
    of VAD-packed speech) and its fitted encoder context.
    """
    from stream_app.inference.guards import DecodeGuards

    s = settings.streaming
    return {
        "language": spoken_language(s.language),
        "beam_size": s.beam_size,
        "temperature": list(DecodeGuards().temperatures),
        "condition_on_previous_text": False,
        "no_speech_threshold": s.no_speech_threshold,
        "log_prob_threshold": s.log_prob_threshold,
        "compression_ratio_threshold": s.compression_ratio_threshold,
        "vad_filter": s.vad,
        "vad_parameters": {"min_silence_duration_ms": 500},
        "word_timestamps": True,
    }


# Worker overrides every service benchmark uses: no cache (a repeated run must not be answered from
# Redis) and the profile chosen for throughput.
SERVICE_ENV: Mapping[str, str] = {
    "STREAM_APP_STREAMING__PROFILE": "throughput",
    "STREAM_APP_CACHING__CACHE_LEVELS": "",
}


@dataclass(frozen=True)
class ServiceRun:
    """One timed pass of clips through a running service."""

    streams: int
    audio_seconds: float
    wall_seconds: float
    completed: int
    wer: float

    @property
    def rtx(self) -> float:
        """Seconds of audio per wall second."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


def window_env(window: float | None) -> dict[str, str]:
    """Worker overrides for an explicit maximum window (seconds), or none to keep the live rule's."""
    return {} if window is None else {"STREAM_APP_STREAMING__MAX_WINDOW": f"{window}s"}


def run_streams(
    harness: ServiceHarness,
    clips: Sequence[Clip],
    concurrency: int,
    *,
    label: str,
    chunk_ms: float = 500.0,
    timeout: float = 1800.0,
) -> ServiceRun:
    """Publish every clip as its own stream, ``concurrency`` at a time, as fast as possible; time until all ended.

    Lane ``j`` publishes clips ``j, j + concurrency, ...`` one after another, starting the next as
    soon as the previous one's end-of-stream segment is out, so ``concurrency`` streams are live at once.
    """
    ids = [f"{label}-{i}" for i in range(len(clips))]
    finished: dict[str, threading.Event] = {sid: threading.Event() for sid in ids}
    errors: list[BaseException] = []

    def lane(j: int) -> None:
        try:
            with harness.publisher() as publisher:
                for i in range(j, len(clips), concurrency):
                    publisher.publish_file(clips[i].path, ids[i], chunk_ms=chunk_ms, source_format="s16le16k")
                    if i + concurrency < len(clips):
                        finished[ids[i]].wait(timeout)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)
            for event in finished.values():
                event.set()

    started = time.monotonic()
    lanes = [threading.Thread(target=lane, args=(j,), daemon=True) for j in range(min(concurrency, len(clips)))]
    for thread in lanes:
        thread.start()
    texts = _collect(harness, ids, finished, timeout)
    wall = time.monotonic() - started
    if errors:
        raise RuntimeError(f"publishing failed: {errors[0]}") from errors[0]
    done = sum(1 for t in texts if t is not None)
    return ServiceRun(
        streams=concurrency,
        audio_seconds=sum(c.duration for c in clips),
        wall_seconds=wall,
        completed=done,
        wer=corpus_wer([c.reference for c in clips], [t or "" for t in texts]),
    )


def _collect(
    harness: ServiceHarness, ids: list[str], finished: Mapping[str, threading.Event], timeout: float
) -> list[str | None]:
    """Read the output topic until every stream ended; each stream's final text (None: it never ended)."""
    assemblers = {sid: TranscriptAssembler(sid) for sid in ids}
    open_streams = set(ids)
    deadline = time.monotonic() + timeout
    with harness.tail() as tail:
        while open_streams and time.monotonic() < deadline:
            dead = [r.name for r in harness.replicas.values() if not r.running]
            if dead:
                for event in finished.values():
                    event.set()
                raise RuntimeError(f"replica {dead[0]} exited:\n{harness.log_tail(dead[0])}")
            for segment in tail.segments(timeout=2.0):
                assembler = assemblers.get(segment.stream_id)
                if assembler is None:
                    continue
                assembler.add(segment)
                if assembler.ended and segment.stream_id in open_streams:
                    open_streams.discard(segment.stream_id)
                    finished[segment.stream_id].set()
                    if not open_streams:
                        break
    for event in finished.values():
        event.set()  # let lanes that still wait give up
    return [assemblers[sid].result().text if assemblers[sid].ended else None for sid in ids]


def add_skip_missed_ticks(parser: argparse.ArgumentParser) -> None:
    """Add ``--skip-missed-ticks on|off`` to a benchmark that compares two runs word for word."""
    parser.add_argument(
        "--skip-missed-ticks",
        choices=("on", "off"),
        default="off",
        help="off (default): a stream behind its audio still decodes every commit step, so both runs decode the same"
        " windows and the verifier compares them word for word; on: the worker's default (streaming.skip_missed_ticks),"
        " whose decodes depend on load, so the two runs publish different (not fewer) words",
    )
