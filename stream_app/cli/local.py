"""`stream-app local up|down|status|topics`: the real Kafka and Redis on this machine, without Docker.

``--secure`` runs Kafka with a SASL_SSL listener (SCRAM users, certificates made with openssl) and
Redis with TLS and passwords, and ``up`` prints the client overlay to use them (``stream-app -c``).
The secure stack uses the configured ports: to run it beside the plain one, give it others, e.g.
``STREAM_APP_KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:9094 STREAM_APP_KAFKA__CONTROLLER_PORT=9095
STREAM_APP_LOCAL__REDIS_PORT=6380 stream-app local up --secure``. With the overlay as configuration
(``-c``), every action works on the secure stack without ``--secure``.
"""

from __future__ import annotations

import argparse
from typing import Any

from stream_app.cli.actions import action_subparsers
from stream_app.config import Settings
from stream_app.local import LocalStack, LocalStackError, ensure_topics
from stream_app.local.stack import DEFAULT_START_TIMEOUT_S

EXIT_NOT_RUNNING = 3  # as `systemctl status` does for a stopped unit


def register(subparsers: Any) -> None:
    """Add the `local` sub-command and its actions."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "local", help="run Kafka (KRaft) and Redis locally for development and tests"
    )
    sub = action_subparsers(parser, "local_command")
    up = sub.add_parser("up", help="fetch (once), start and wait for Kafka and Redis; create the topics")
    up.add_argument(
        "--timeout", type=float, default=DEFAULT_START_TIMEOUT_S, help="seconds to wait for each service"
    )
    up.set_defaults(handler=_up)
    down = sub.add_parser("down", help="stop the Kafka and Redis that `up` started")
    down.set_defaults(handler=_down)
    status = sub.add_parser("status", help="show what runs where (exit 3 when not all answer)")
    status.set_defaults(handler=_status)
    secure_help = {
        up: "start the secure stack instead: SASL_SSL Kafka and TLS Redis with passwords (certificates made "
        "on first use), and print the client configuration to pass as `stream-app -c`",
        down: "stop the secure stack (SASL_SSL Kafka, TLS Redis) on the configured ports",
        status: "report the secure stack (SASL_SSL Kafka, TLS Redis) on the configured ports",
    }
    for action, text in secure_help.items():
        action.add_argument("--secure", action="store_true", help=text)
    topics = sub.add_parser("topics", help="only create the service topics on the configured broker")
    topics.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the broker")
    topics.set_defaults(handler=_topics)


def _stack(args: argparse.Namespace, settings: Settings) -> LocalStack:
    return LocalStack(settings, secure=True if args.secure else None)


def _up(args: argparse.Namespace, settings: Settings) -> int:
    stack = _stack(args, settings)
    try:
        created = stack.up(timeout=args.timeout)
    except LocalStackError as exc:
        print(f"stream-app local up: {exc}")
        return 1
    if created:
        print(f"created topics: {', '.join(created)}")
    _print_status(stack)
    if stack.client_config is not None:
        print(f"client configuration: {stack.client_config}")
        print(f"  use it as: stream-app -c {stack.client_config} worker|publish|tail|demo|config check ...")
    return 0


def _down(args: argparse.Namespace, settings: Settings) -> int:
    try:
        stopped = _stack(args, settings).down()
    except LocalStackError as exc:
        print(f"stream-app local down: {exc}")
        return 1
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    return 0 if _print_status(_stack(args, settings)) else EXIT_NOT_RUNNING


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    try:
        created = ensure_topics(settings, timeout=args.timeout)
    except LocalStackError as exc:
        print(f"stream-app local topics: {exc}")
        return 1
    print(f"created topics: {', '.join(created)}" if created else "all topics exist")
    return 0


def _print_status(stack: LocalStack) -> bool:
    states = stack.status()
    for state in states:
        print(state.summary)
    return all(state.answering for state in states)
