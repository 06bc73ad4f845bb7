"""`stream-app worker`: run one replica of the service in the consumer group."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from stream_app.config import Settings

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the `worker` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "worker", help="run a worker replica (consumes audio chunks, publishes transcript segments)"
    )
    parser.add_argument("--replica", help="replica name (its local state folder); default: host-webport")
    parser.add_argument("--web-port", type=int, help="faust web port (overrides worker.web_port)")
    parser.add_argument("--metrics-port", type=int, help="metrics port (overrides metrics.port; 0 = any free)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from stream_app.worker.runtime import run_worker  # heavy imports only when the worker runs

    return run_worker(settings, replica=args.replica, web_port=args.web_port, metrics_port=args.metrics_port)
