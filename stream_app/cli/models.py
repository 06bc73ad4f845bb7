"""`stream-app models`: which models resolve where, and joining ``base`` ahead of time.

``models switch`` (publish a switch to the control topic so every replica changes model live)
belongs beside these: add its parser in ``register`` and its handler below.
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from stream_app.config import Settings, expand_path
from stream_app.inference.exceptions import InferenceError
from stream_app.inference.models import list_known_models, locate_model, resolve_model
from stream_app.inference.precision import PRECISIONS, resolve_precision
from stream_app.inference.registry import estimate_model_bytes


def register(subparsers: Any) -> None:
    """Add the `models` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser("models", help="list and prepare Whisper models")
    sub = parser.add_subparsers(dest="models_command", required=True)
    show = sub.add_parser("list", help="known models, where they resolve, and whether they are ready")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.set_defaults(handler=_list)
    prepare = sub.add_parser("prepare", help="resolve a model now (join base's two halves into the cache)")
    prepare.add_argument("name", help="tiny.en, base, or a CTranslate2 model folder")
    prepare.add_argument(
        "--verify", action="store_true", help="re-hash an existing join and redo it if damaged"
    )
    prepare.set_defaults(handler=_prepare)
    # `models switch MODEL [--precision P]` (control topic) is added here by the worker integration.


def _list(args: argparse.Namespace, settings: Settings) -> int:
    cache_dir = expand_path(settings.optimization.model_cache_dir)
    device = settings.optimization.device
    try:
        precision, note = resolve_precision(settings.optimization.default_precision, device)
    except InferenceError as exc:
        precision, note = settings.optimization.default_precision, str(exc)
    rows: list[dict[str, Any]] = []
    for known in list_known_models():
        where = locate_model(known.name, cache_dir)
        estimate = estimate_model_bytes(where.path, precision) if where.ready and where.path else None
        rows.append(
            {
                "name": known.name,
                "multilingual": known.multilingual,
                "packages": list(known.packages),
                "path": str(where.path) if where.path else None,
                "ready": where.ready,
                "detail": where.detail,
                "estimated_bytes": estimate,
                "configured": known.name == settings.optimization.model,
            }
        )
    summary = {
        "models": rows,
        "configured_model": settings.optimization.model,
        "device": device,
        "precision": precision,
        "precision_note": note,
        "precisions": list(PRECISIONS),
        "memory_budget_bytes": settings.optimization.memory_budget,
        "cache_dir": str(cache_dir),
    }
    if args.json:
        print(orjson.dumps(summary).decode())
        return 0
    for row in rows:
        mark = "*" if row["configured"] else " "
        size = f"{row['estimated_bytes'] >> 20} MB at {precision}" if row["estimated_bytes"] else "-"
        print(
            f"{mark} {row['name']:<8} {'ready' if row['ready'] else 'missing':<8} {size:<18} {row['detail']}"
        )
        if row["path"]:
            print(f"           {row['path']}")
    print(f"device {device}, precision {precision}" + (f" ({note})" if note else ""))
    return 0


def _prepare(args: argparse.Namespace, settings: Settings) -> int:
    cache_dir = expand_path(settings.optimization.model_cache_dir)
    try:
        path = resolve_model(args.name, cache_dir, verify_hash=args.verify)
    except InferenceError as exc:
        print(f"stream-app: {exc}")
        return 1
    print(path)
    return 0
