"""The `stream-app` console script: one entry point, one sub-command per job.

Each sub-command lives in its own module under `stream_app.cli` and exposes
``register(subparsers)``, which adds its parser and sets ``handler(args, settings) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from stream_app.config import ConfigError, load_settings
from stream_app.config.log_redaction import install_log_redaction

# Modules that provide sub-commands; a module listed here must exist and define `register`.
COMMAND_MODULES = (
    "stream_app.cli.config_cmd",
    "stream_app.cli.local",
    "stream_app.cli.worker",
    "stream_app.cli.publish",
    "stream_app.cli.tail",
    "stream_app.cli.captions",
    "stream_app.cli.batch",
    "stream_app.cli.models",
    "stream_app.cli.bench",
    "stream_app.cli.demo",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(prog="stream-app", description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", help="TOML configuration file (default: $STREAM_APP_CONFIG)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a sub-command not built yet
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console script; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"stream-app: {exc}", file=sys.stderr)
        return 2
    install_log_redaction(settings.secret_values())  # no log line of this process shows a configured secret
    return int(args.handler(args, settings))


if __name__ == "__main__":
    sys.exit(main())
