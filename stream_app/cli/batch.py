"""`stream-app batch PATH...`: transcribe files and folders into a JSONL journal, resumably."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from stream_app.captions.subtitles import FORMATS
from stream_app.config import Settings


def register(subparsers: Any) -> None:
    """Add the `batch` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "batch", help="transcribe audio files and folders (no Kafka needed)"
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders (searched recursively)")
    parser.add_argument(
        "-o",
        "--output",
        default="results.jsonl",
        type=Path,
        help="JSONL journal; files it records as done are skipped on re-run (default: results.jsonl)",
    )
    parser.add_argument("--workers", type=int, default=None, help="inference threads (default: parallel.max_workers)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--pack",
        action="store_true",
        help="let short files share 30 s windows: faster on many short files, but a file's text may then "
        "depend on the files next to it (off: each file is decoded on its own audio)",
    )
    parser.add_argument("--no-pack", action="store_true", help=argparse.SUPPRESS)  # the default now
    parser.add_argument(
        "--format",
        choices=("jsonl", *FORMATS),
        default="jsonl",
        help="also write one subtitle file per audio file (srt or vtt) from the words' times (default: the "
        "journal only)",
    )
    parser.add_argument(
        "--subtitles-dir",
        type=Path,
        help="where --format srt|vtt files go, named <audio stem>.<format> (default: the journal's folder)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from stream_app.batch import PackingPolicy, transcribe_batch

    if args.workers is not None and args.workers < 1:
        print("stream-app batch: --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        result = transcribe_batch(
            args.paths,
            settings=settings,
            output=args.output,
            workers=args.workers,
            progress=not args.no_progress,
            packing=PackingPolicy.from_settings(settings, pack=args.pack and not args.no_pack),
        )
    except FileNotFoundError as exc:
        print(f"stream-app batch: {exc}", file=sys.stderr)
        return 2
    if args.format in FORMATS:
        from stream_app.batch.discovery import find_audio_files
        from stream_app.batch.subtitles import write_subtitles

        folder = args.subtitles_dir or args.output.parent
        written = write_subtitles(args.output, find_audio_files(args.paths), args.format, folder)
        print(f"wrote {len(written)} {args.format} file(s) to {folder}", file=sys.stderr)
    summary = result.summary()
    if args.json:
        print(orjson.dumps(summary).decode())
    else:
        width = max(len(k) for k in summary)
        for key, value in summary.items():
            print(f"{key:<{width}}  {value}")
        print(f"{'journal':<{width}}  {args.output}")
    return 0 if result.failed == 0 else 1
