"""`stream-app bench accuracy`: streamed WER vs whole-file WER on the same synthetic speech, file by file.

A multi-minute espeak-ng corpus (several voices, pauses, one long silence), and with ``--generated N``
as many recordings from the sentence grammar of `stream_app.testing.generated_speech` (other texts,
voices, speeds, loudness and pauses: speech the live rule was not tuned on), goes through a real worker
(``live`` profile, no cache, published as fast as possible, one stream per file; every commit step
decoded, as for a real-time stream that keeps up, unless ``--skip-missed-ticks``) and through
faster-whisper's `WhisperModel.transcribe` on each whole file. Both use the same model, precision,
language, beam size, decode thresholds and Silero VAD (500 ms minimum silence), and neither feeds the
previous text as a prompt (``condition_on_previous_text=False``). Synthetic speech makes the absolute
WER high; the figures that matter are the differences: the corpus's, and the worst file's beside it
(a total hides the file that failed). The ``whole_file_shifted_*`` keys put those differences in
scale: the same whole-file decode of each file delayed by 0.25 s of silence (a recorder that started a
quarter second earlier), against the undelayed one, is how far faster-whisper moves from itself on
the same speech. ``speech_seconds_without_words`` adds up the speech Silero VAD
hears in each recording that no final word reaches and no gap of a final segment covers: words lost
without a trace. ``--transcripts DIR`` keeps each file's texts (the reference, the streamed finals and
both whole-file decodes, with the words each decode got wrong) as ``DIR/<file>.transcripts.json``, to read where a
file's difference comes from.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import numpy.typing as npt
import orjson

from stream_app.audio.files import decode_audio_file
from stream_app.bench.common import BENCH_HOME, load_reference_model, reference_options, without_cache
from stream_app.bench.report import emit
from stream_app.config import Settings
from stream_app.inference.transcriber import DecodeGuards
from stream_app.inference.vad import SpeechDetector
from stream_app.local import LocalStack
from stream_app.testing.corpus import CorpusItem, build_corpus, words_in_spans
from stream_app.testing.generated_speech import recording
from stream_app.testing.live_run import speech_without_words
from stream_app.testing.service import ServiceHarness
from stream_app.testing.wer import boundary_repeats, corpus_wer, normalize, word_error_rate
from stream_app.wire.chunk import SAMPLE_RATE

# How far faster-whisper moves from itself on the same file when the recording starts this much earlier.
REFERENCE_SHIFT_S = 0.25

GOALS = "delta <= 0.015, max_file_wer_delta <= 0.05, speech_seconds_without_words = 0, silence_words = 0"

Transcript = tuple[str, list[tuple[float, float]]]  # text, and (start, end) of every word
Streamed = tuple[str, list[tuple[float, float]], float]  # ... and the speech seconds left without words


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the accuracy benchmark."""
    parser.add_argument("--files", type=int, default=6, help="corpus files, one voice each (default 6)")
    parser.add_argument("--sentences", type=int, default=8, help="sentences per file (default 8)")
    parser.add_argument("--chunk-ms", type=float, default=500.0, help="chunk length of the published streams")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of the service's topics")
    parser.add_argument(
        "--generated", type=int, default=0, help="recordings of the sentence grammar added to the corpus (default 0)"
    )
    parser.add_argument("--seed", type=int, default=1000, help="first seed of the generated recordings")
    parser.add_argument(
        "--transcripts",
        type=Path,
        default=None,
        metavar="DIR",
        help="write each file's reference, streamed and whole-file texts and their errors to"
        " DIR/<file>.transcripts.json",
    )
    parser.add_argument(
        "--skip-missed-ticks",
        action="store_true",
        help="let the worker pass over the commit steps a stream is behind on, as it does for a stream that"
        " falls behind (default: every step, the rule of a real-time stream that keeps up)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Transcribe the corpus both ways and print per-file and total figures."""
    settings = without_cache(settings)
    streaming = dataclasses.replace(settings.streaming, skip_missed_ticks=args.skip_missed_ticks)
    settings = dataclasses.replace(settings, streaming=streaming)
    started = time.monotonic()
    corpus = build_corpus(BENCH_HOME, files=args.files, sentences_per_file=args.sentences, long_silence=True)
    for seed in range(args.seed, args.seed + args.generated):
        made = recording(BENCH_HOME / "generated", seed, max_seconds=90.0)
        corpus.append(CorpusItem(made.path, made.reference, made.duration, made.voice, made.long_silences))
    LocalStack(settings).up()
    streamed = _streamed(settings, corpus, args.chunk_ms, args.partitions)
    model = load_reference_model(settings)
    whole = _whole_file(model, settings, corpus)
    shifted = _whole_file_shifted(model, settings, corpus)

    rows: list[dict[str, Any]] = []
    for item, (s_text, s_words, unheard), (w_text, w_words), shifted_text in zip(
        corpus, streamed, whole, shifted, strict=True
    ):
        s_wer, w_wer = word_error_rate(item.reference, s_text), word_error_rate(item.reference, w_text)
        shifted_wer = word_error_rate(item.reference, shifted_text)
        rows.append(
            {
                "file": item.path.name,
                "voice": item.voice,
                "audio_s": round(item.duration, 1),
                "streamed_wer": round(s_wer, 4),
                "whole_file_wer": round(w_wer, 4),
                "wer_delta": round(s_wer - w_wer, 4),
                "whole_file_shifted_wer": round(shifted_wer, 4),
                "speech_s_without_words": round(unheard, 2),
                "repeats": boundary_repeats(item.reference, s_text),
                "whole_repeats": boundary_repeats(item.reference, w_text),
                "silence_words": words_in_spans(s_words, item.silences),
                "whole_silence_words": words_in_spans(w_words, item.silences),
            }
        )
    if args.transcripts is not None:
        args.transcripts.mkdir(parents=True, exist_ok=True)
        for item, (s_text, _, _), (w_text, _), shifted_text in zip(corpus, streamed, whole, shifted, strict=True):
            texts = {"streamed": s_text, "whole_file": w_text, "whole_file_shifted": shifted_text}
            record = transcript_record(item.reference, texts)
            path = args.transcripts / f"{item.path.stem}.transcripts.json"
            path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
    references = [item.reference for item in corpus]
    streamed_wer = corpus_wer(references, [text for text, _, _ in streamed])
    whole_wer = corpus_wer(references, [text for text, _ in whole])
    worst = max(rows, key=lambda r: r["wer_delta"])
    files = [row["file"] for row in rows]
    spread, spread_file = worst_difference(
        files, [r["whole_file_shifted_wer"] for r in rows], [r["whole_file_wer"] for r in rows]
    )
    summary: dict[str, Any] = {
        "streamed_wer": round(streamed_wer, 4),
        "whole_file_wer": round(whole_wer, 4),
        "delta": round(streamed_wer - whole_wer, 4),
        "max_file_wer_delta": worst["wer_delta"],
        "worst_file": worst["file"],
        "whole_file_shifted_delta": round(corpus_wer(references, shifted) - whole_wer, 4),
        "whole_file_shifted_max_file_wer_delta": spread,
        "whole_file_shifted_worst_file": spread_file,
        "whole_file_shift_s": REFERENCE_SHIFT_S,
        "speech_seconds_without_words": round(sum(r["speech_s_without_words"] for r in rows), 2),
        "streamed_sub_del_ins": _error_kinds(references, [text for text, _, _ in streamed]),
        "whole_file_sub_del_ins": _error_kinds(references, [text for text, _ in whole]),
        "boundary_repeats": sum(r["repeats"] for r in rows),
        "whole_file_repeats": sum(r["whole_repeats"] for r in rows),
        "silence_words": sum(r["silence_words"] for r in rows),
        "whole_file_silence_words": sum(r["whole_silence_words"] for r in rows),
        "silence_s": round(sum(b - a for item in corpus for a, b in item.silences), 1),
        "files": len(corpus),
        "audio_s": round(sum(item.duration for item in corpus), 1),
        "model": settings.optimization.model,
        "precision": settings.optimization.default_precision,
        "profile": settings.streaming.profile,
        "commit_step_s": settings.commit_step_seconds,
        "generated_files": args.generated,
        "skip_missed_ticks": args.skip_missed_ticks,
        "decode": _decode_note(settings),
        "wall_s": round(time.monotonic() - started, 1),
        "goals": GOALS,
    }
    emit("accuracy: streamed (service, live profile) vs whole file (faster-whisper)", rows, summary, as_json=args.json)
    return 0


def _error_kinds(references: Sequence[str], hypotheses: Sequence[str]) -> str:
    """Substitutions, deletions and insertions over the corpus: words lost at a cut show up as deletions."""
    out = jiwer.process_words([normalize(r) for r in references], [normalize(h) for h in hypotheses])
    return f"{out.substitutions}/{out.deletions}/{out.insertions}"


def _decode_note(settings: Settings) -> str:
    s = settings.streaming
    return (
        f"beam_size={s.beam_size} language={s.language} condition_on_previous_text=False "
        f"vad={s.vad} (min_silence 500 ms) no_speech={s.no_speech_threshold} logprob={s.log_prob_threshold} "
        f"compression={s.compression_ratio_threshold} temperatures={DecodeGuards().temperatures} word_timestamps=True"
    )


def _streamed(settings: Settings, corpus: Sequence[CorpusItem], chunk_ms: float, partitions: int) -> list[Streamed]:
    """Publish every file as one stream, as fast as possible; each stream's final text, words and unheard speech."""
    ids = [f"acc-{i}" for i in range(len(corpus))]
    with ServiceHarness(settings, partitions=partitions) as harness:
        harness.start("r1")
        with harness.publisher() as publisher:
            for stream_id, item in zip(ids, corpus, strict=True):
                publisher.publish_file(item.path, stream_id, chunk_ms=chunk_ms, source_format="s16le16k")
        collected = harness.collect(ids, timeout=1800)
    detector = SpeechDetector()
    out: list[Streamed] = []
    for stream_id, item in zip(ids, corpus, strict=True):
        result = collected[stream_id]
        if not result.transcript.complete:
            raise RuntimeError(f"stream {stream_id} did not end within the wait")
        finals = result.finals()
        words = [(w.start, w.end) for segment in finals for w in segment.words]
        missing = speech_without_words(decode_audio_file(item.path), finals, detector)
        out.append((result.transcript.text, words, sum(b - a for a, b in missing)))
    return out


def _whole_file(model: Any, settings: Settings, corpus: Sequence[CorpusItem]) -> list[Transcript]:
    """Transcribe each file whole with `WhisperModel.transcribe`, the same decode settings as the service."""
    options = reference_options(settings)
    out: list[Transcript] = []
    for item in corpus:
        segments, _ = model.transcribe(str(item.path), **options)
        texts: list[str] = []
        words: list[tuple[float, float]] = []
        for segment in segments:  # the generator runs the model as it is consumed
            texts.append(segment.text.strip())
            words.extend((w.start, w.end) for w in segment.words or [])
        out.append((" ".join(texts), words))
    return out


def _whole_file_shifted(model: Any, settings: Settings, corpus: Sequence[CorpusItem]) -> list[str]:
    """Decode each file whole again, delayed by `REFERENCE_SHIFT_S` of silence: the reference's own spread."""
    options = reference_options(settings)
    texts: list[str] = []
    for item in corpus:
        segments, _ = model.transcribe(delayed(decode_audio_file(item.path), REFERENCE_SHIFT_S), **options)
        texts.append(" ".join(segment.text.strip() for segment in segments))
    return texts


def transcript_record(reference: str, texts: dict[str, str]) -> dict[str, Any]:
    """One file's texts for ``--transcripts``: each decode's text, WER and the words it got wrong.

    ``errors`` lists, in order, every difference from the reference after normalisation: ``"-w"`` a
    reference word the decode left out, ``"+w"`` a word it added, ``"w>v"`` a word it heard as another.
    """
    record: dict[str, Any] = {"reference": reference}
    for name, text in texts.items():
        out = jiwer.process_words(normalize(reference), normalize(text))
        truth, heard = out.references[0], out.hypotheses[0]
        errors: list[str] = []
        for chunk in out.alignments[0]:
            said, got = truth[chunk.ref_start_idx : chunk.ref_end_idx], heard[chunk.hyp_start_idx : chunk.hyp_end_idx]
            if chunk.type == "delete":
                errors += [f"-{w}" for w in said]
            elif chunk.type == "insert":
                errors += [f"+{w}" for w in got]
            elif chunk.type == "substitute":
                errors += [f"{a}>{b}" for a, b in zip(said, got, strict=True)]
        record[name] = {"text": text, "wer": round(word_error_rate(reference, text), 4), "errors": errors}
    return record


def delayed(samples: npt.NDArray[np.float32], seconds: float) -> npt.NDArray[np.float32]:
    """Return the recording as a recorder that started ``seconds`` earlier would have sent it (silence first)."""
    return np.concatenate([np.zeros(round(seconds * SAMPLE_RATE), np.float32), samples])


def worst_difference(files: Sequence[str], ours: Sequence[float], theirs: Sequence[float]) -> tuple[float, str]:
    """Return the largest per-file WER difference ``ours - theirs`` and the file it belongs to."""
    differences = [a - b for a, b in zip(ours, theirs, strict=True)]
    worst = max(range(len(differences)), key=differences.__getitem__)
    return round(differences[worst], 4), files[worst]
