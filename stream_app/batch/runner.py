"""`transcribe_batch`: many files through the shared inference pool, journaled, resumable.

Files are decoded in a thread pool (a few ahead of the model) and cut into windows that follow their
speech (Silero VAD in the same threads; ``PackingPolicy(follow_speech=False)``: 30 s windows cut at
quiet moments); short files share windows only with ``PackingPolicy(pack=True)``. Windows are
submitted at BATCH priority so windows of different files batch together in one model call, each
decoded on its own audio. Each file is journaled the moment its last window comes back; a file that
cannot be read (or was named but does not exist) or whose window fails is recorded with the reason and
the run goes on.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from stream_app.audio.exceptions import AudioFileError
from stream_app.audio.files import decode_audio_file
from stream_app.batch.assembly import FileAssembly
from stream_app.batch.discovery import find_audio_files
from stream_app.batch.packing import (
    SAMPLE_RATE,
    PackingPolicy,
    Samples,
    Window,
    WindowPacker,
    cut_points,
    split_window,
)
from stream_app.batch.results import (
    BatchResult,
    FileResult,
    FileStamp,
    Journal,
    completed_files,
    journal_path,
    write_summary,
)
from stream_app.batch.speech_cuts import padded, speech_cut_points, voiced_ranges
from stream_app.config import Settings, load_settings
from stream_app.inference.batching import BatchTranscriber
from stream_app.inference.pool import InferencePool
from stream_app.inference.types import Priority, WindowJob, WindowTranscript
from stream_app.inference.vad import shared_detector

log = logging.getLogger(__name__)

Spans = list[tuple[int, int]]
_Prepared = tuple[Samples, Spans, Spans | None]  # audio, its pieces, its speech (None: the model finds it)
_Decoded = tuple[int, Path, FileStamp, Samples | None, Spans, Spans | None, str | None]


def transcribe_batch(
    paths: Iterable[str | Path],
    *,
    settings: Settings | None = None,
    output: Path | None = None,
    workers: int | None = None,
    progress: bool = False,
    transcriber: BatchTranscriber | None = None,
    packing: PackingPolicy | None = None,
    decode_threads: int = 2,
) -> BatchResult:
    """Transcribe files and folders (recursively); return counts, speed and each file's result.

    Args:
        paths: Files and folders.
        settings: Configuration (loaded the usual way when omitted).
        output: JSONL journal to append to; files it records as succeeded (same path, size and
            modification time) are skipped, and the summary goes to ``<output>.summary.json``.
            ``None``: nothing written.
        workers: Inference pool threads (default ``parallel.max_workers``).
        progress: Show a progress bar on stderr.
        transcriber: The model to use (default: ``optimization.model``, loaded locally).
        packing: How files become windows (default `PackingPolicy.from_settings`: windows that follow
            the speech, one file's audio each, so a file's text depends on its own audio only).
        decode_threads: Threads decoding files ahead of the model.

    Raises:
        FileNotFoundError: none of ``paths`` exists (a missing one among others is a failed file).
    """
    started = time.monotonic()
    settings = settings if settings is not None else load_settings()
    files = find_audio_files(paths)
    done = completed_files(output)
    result = BatchResult(total=len(files))
    todo: list[tuple[Path, FileStamp]] = []
    for path in files:
        stamp = FileStamp.of(path)
        if done.get(journal_path(path)) == stamp:
            result.skipped += 1
        else:
            todo.append((path, stamp))
    if not todo:
        result.wall_seconds = time.monotonic() - started
        if output is not None:
            write_summary(output, result)
        return result

    parallel = settings.parallel
    if workers is not None:
        parallel = dataclasses.replace(parallel, max_workers=workers)
    if transcriber is None:
        from stream_app.batch.model import load_transcriber  # loads faster-whisper only when needed

        transcriber = load_transcriber(settings)
    journal = Journal(output)
    pool = InferencePool(transcriber, parallel, name="batch")
    policy = packing or PackingPolicy.from_settings(settings)
    run = _Run(pool, parallel.max_batch * max(1, parallel.max_workers), policy, result)
    bar = tqdm(total=len(todo), disable=not progress, unit="file", dynamic_ncols=True)

    def on_finish(record: FileResult) -> FileResult:
        written = journal.append(record)
        bar.update(1)
        return written

    run.on_finish = on_finish
    try:
        with ThreadPoolExecutor(max(1, decode_threads), thread_name_prefix="batch-decode") as decoder:
            run.execute(_decode_ahead(decoder, todo, 4 * max(1, decode_threads), _Pieces(policy)))
    finally:
        pool.close(wait=True, cancel_pending=True)
        journal.close()
        bar.close()
    result.wall_seconds = time.monotonic() - started
    if output is not None:
        write_summary(output, result)
    return result


class _Run:
    """The state of one run: files in flight, windows outstanding, and the completions to collect."""

    def __init__(self, pool: InferencePool, max_outstanding: int, policy: PackingPolicy, result: BatchResult) -> None:
        self.pool = pool
        self.max_outstanding = max(2, max_outstanding)
        self.policy = policy
        self.result = result
        self.packer = WindowPacker(policy)
        self.files: dict[int, FileAssembly] = {}
        self.completions: queue.Queue[tuple[Window, Future[WindowTranscript]]] = queue.Queue()
        self.outstanding = 0
        self.retry: deque[Window] = deque()
        self.on_finish: Callable[[FileResult], FileResult] = lambda record: record

    def execute(self, decoded: Iterator[_Decoded]) -> None:
        for file_id, path, stamp, samples, spans, voiced, error in decoded:
            if samples is None:
                self._finish(FileResult(str(path), "failed", size=stamp.size, error=error, mtime_ns=stamp.mtime_ns))
                continue
            assembly = FileAssembly(str(path), stamp, len(samples) / SAMPLE_RATE, len(spans))
            if not spans:  # no speech: nothing to decode, the file is done (and empty)
                self._finish(assembly.result())
                continue
            self.files[file_id] = assembly
            for window in self.packer.add_file(file_id, samples, spans, voiced):
                self._submit(window)
            self._collect(block=False)
            self._submit_retries()
        for window in self.packer.flush():
            self._submit(window)
        while self.outstanding or self.retry:
            self._submit_retries()
            if self.outstanding:
                self._collect(block=True)

    def _submit_retries(self) -> None:
        while self.retry:
            self._submit(self.retry.popleft())

    def _submit(self, window: Window) -> None:
        while self.outstanding >= self.max_outstanding:
            self._collect(block=True)
        number = self.result.windows
        self.result.windows += 1
        job = WindowJob(
            f"batch-{number}", number, 0.0, window.samples, Priority.BATCH, time.monotonic(), speech=window.speech
        )
        future = self.pool.submit(job)
        self.outstanding += 1
        future.add_done_callback(lambda f: self.completions.put((window, f)))

    def _collect(self, *, block: bool) -> None:
        while True:
            try:
                window, future = self.completions.get(block=block)
            except queue.Empty:
                return
            block = False
            self.outstanding -= 1
            if len(window.pieces) > 1 and future.exception() is not None:
                # one bad piece must not fail its neighbours: each piece is tried in a window of its own
                self.retry.extend(split_window(window))
                continue
            for file_id, record in FileAssembly.settle(self.files, window, future):
                del self.files[file_id]
                self._finish(record)

    def _finish(self, record: FileResult) -> None:
        """Journal a finished file, then count it as journaled (a record that cannot be written is a failure)."""
        record = self.on_finish(record)
        self.result.record(record)
        if not record.succeeded:
            log.info("%s failed: %s", journal_path(record.path), record.error)
        elif record.undecoded:
            seconds = sum(b - a for a, b in record.undecoded)
            log.warning(
                "%s: %.1f s of speech in %d span(s) left without words (the journal's 'undecoded')",
                journal_path(record.path),
                seconds,
                len(record.undecoded),
            )


class _Pieces:
    """A file's audio and where it is cut, made in the decoding threads (Silero VAD runs there too)."""

    def __init__(self, policy: PackingPolicy) -> None:
        self._policy = policy

    def __call__(self, path: Path) -> _Prepared:
        samples = np.asarray(decode_audio_file(path), dtype=np.float32)
        if not self._policy.follow_speech:
            return samples, cut_points(samples, self._policy), None
        probs = shared_detector().whole(samples)  # one ONNX session, thread-safe, for every decode thread
        speech, total = self._policy.speech, len(samples)
        voiced = padded(voiced_ranges(probs, total, speech), round(speech.speech_pad * SAMPLE_RATE), total)
        return samples, speech_cut_points(probs, total, speech), voiced


def _decode_ahead(
    pool: ThreadPoolExecutor,
    todo: Sequence[tuple[Path, FileStamp]],
    ahead: int,
    prepare: Callable[[Path], _Prepared],
) -> Iterator[_Decoded]:
    """Decode (and cut) files in the thread pool, at most ``ahead`` in flight, yielding them in order."""
    pending: deque[tuple[int, Path, FileStamp, Future[_Prepared]]] = deque()
    items = iter(enumerate(todo))
    while True:
        while len(pending) < ahead:
            try:
                file_id, (path, stamp) = next(items)
            except StopIteration:
                break
            pending.append((file_id, path, stamp, pool.submit(prepare, path)))
        if not pending:
            return
        file_id, path, stamp, future = pending.popleft()
        try:
            samples, spans, voiced = future.result()
            yield file_id, path, stamp, samples, spans, voiced, None
        except AudioFileError as exc:
            yield file_id, path, stamp, None, [], None, exc.reason
        except Exception as exc:  # any decoder crash fails this file only
            yield file_id, path, stamp, None, [], None, f"{type(exc).__name__}: {exc}"
