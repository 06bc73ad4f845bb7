"""`stream-app local up|down|status|run|topics`: the real Kafka and Redis on this machine, without Docker.

``--secure`` runs Kafka with a SASL_SSL listener (SCRAM users, certificates made with openssl) and
Redis with TLS and passwords, and ``up`` prints the client overlay to use them (``stream-app -c``).
The secure stack uses the configured ports: to run it beside the plain one, give it others, e.g.
``STREAM_APP_KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:9094 STREAM_APP_KAFKA__CONTROLLER_PORT=9095
STREAM_APP_LOCAL__REDIS_PORT=6380 stream-app local up --secure``. With the overlay as configuration
(``-c``), every action works on the secure stack without ``--secure``. ``down`` and ``status``
without ``--secure`` look at both kinds on the configured ports, so ``down`` after ``up --secure``
stops the secure stack. ``run -- COMMAND`` stops afterwards only the services it started itself.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from stream_app.cli.actions import action_subparsers
from stream_app.cli.child_process import run_forwarding_signals
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
    up.add_argument("--timeout", type=float, default=DEFAULT_START_TIMEOUT_S, help="seconds to wait for each service")
    up.set_defaults(handler=_up)
    down = sub.add_parser(
        "down", help="stop the Kafka and Redis that `up` started on the configured ports, the secure ones included"
    )
    down.set_defaults(handler=_down)
    status = sub.add_parser(
        "status", help="show what runs where, the secure stack too when it runs (exit 3 when not all answer)"
    )
    status.set_defaults(handler=_status)
    secure_help = {
        up: "start the secure stack instead: SASL_SSL Kafka and TLS Redis with passwords (certificates made "
        "on first use), and print the client configuration to pass as `stream-app -c`",
        down: "stop only the secure stack (SASL_SSL Kafka, TLS Redis) on the configured ports",
        status: "report only the secure stack (SASL_SSL Kafka, TLS Redis) on the configured ports",
    }
    for action, text in secure_help.items():
        action.add_argument("--secure", action="store_true", help=text)
    run = sub.add_parser(
        "run",
        help="start what is not running, run COMMAND, then stop only what this call started (what CI does)",
    )
    run.add_argument("--timeout", type=float, default=DEFAULT_START_TIMEOUT_S, help="seconds to wait for each service")
    run.add_argument("run_command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...", help="the command to run")
    run.set_defaults(handler=_run)
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
    stopped: list[str] = []
    try:
        for stack in _stacks(args, settings):
            stopped += [_label(stack, name) for name in stack.down()]
    except LocalStackError as exc:
        print(f"stream-app local down: {exc}")
        return 1
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    stacks = _stacks(args, settings)
    shown = [stack for stack in stacks if stack.running()] or stacks[:1]
    answering = [_print_status(stack) for stack in shown]
    return 0 if all(answering) else EXIT_NOT_RUNNING


def _run(args: argparse.Namespace, settings: Settings) -> int:
    command = args.run_command[1:] if args.run_command[:1] == ["--"] else args.run_command
    if not command:
        print("stream-app local run: give the command after --, e.g. stream-app local run -- pytest -q")
        return 2
    stack = LocalStack(settings)  # plain, or the secure one when the configuration is its client overlay
    try:
        stack.up(timeout=args.timeout)
    except LocalStackError as exc:
        print(f"stream-app local run: {exc}")
        return 1
    started = list(stack.started)
    print(f"started: {', '.join(started)}" if started else "the local stack was running: it is left running")
    try:
        return run_forwarding_signals(command)
    except FileNotFoundError:
        print(f"stream-app local run: no such command {command[0]!r}")
        return 127
    finally:
        if started:
            print(f"stopped what this run started: {', '.join(stack.down(only=started)) or 'nothing'}", flush=True)


def _stacks(args: argparse.Namespace, settings: Settings) -> list[LocalStack]:
    """Return the stacks `down` and `status` look at: the configured one, then the other kind on its ports."""
    if args.secure:
        return [LocalStack(settings, secure=True)]
    configured = LocalStack(settings)
    return [configured, LocalStack(settings, secure=not configured.secure)]


def _label(stack: LocalStack, name: str) -> str:
    if not stack.secure:
        return name
    return f"{name} ({'SASL_SSL' if name == 'kafka' else 'TLS'})"


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    try:
        created = ensure_topics(settings, timeout=args.timeout)
    except LocalStackError as exc:
        print(f"stream-app local topics: {exc}")
        return 1
    print(f"created topics: {', '.join(created)}" if created else "all topics exist")
    return 0


def _print_status(stack: LocalStack) -> bool:
    states = [dataclasses.replace(state, name=_label(stack, state.name)) for state in stack.status()]
    for state in states:
        print(state.summary)
    return all(state.answering for state in states)
