"""`stream-app config show`: print the effective configuration."""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from stream_app.config import Settings


def register(subparsers: Any) -> None:
    """Add the `config` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser("config", help="show the effective configuration")
    sub = parser.add_subparsers(dest="config_command", required=True)
    show = sub.add_parser("show", help="print the configuration after file and environment overrides")
    show.add_argument("--json", action="store_true", help="print JSON instead of TOML-like text")
    show.set_defaults(handler=_show)


def _show(args: argparse.Namespace, settings: Settings) -> int:
    data = settings.to_dict()
    if args.json:
        print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return 0
    for section, values in data.items():
        print(f"[{section}]")
        for key, value in values.items():
            print(f"{key} = {orjson.dumps(value).decode()}")
        print()
    return 0
