"""Sub-commands that group actions (`models`, `config`, `local`, `bench`): a missing action lists the choices.

argparse's own message for a missing required sub-parser is ``required: models_command``, which names
a variable, not what to type.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from stream_app.config import Settings


def action_subparsers(parser: argparse.ArgumentParser, dest: str, metavar: str = "ACTION") -> Any:
    """Add the action sub-parsers to ``parser``; without an action the command prints its choices and exits 2."""
    sub = parser.add_subparsers(dest=dest, metavar=metavar, title="actions")
    parser.set_defaults(handler=_missing_action(parser, sub, metavar))
    return sub


def _missing_action(
    parser: argparse.ArgumentParser, sub: Any, metavar: str
) -> Callable[[argparse.Namespace, Settings], int]:
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        choices = ", ".join(sub.choices)
        print(f"{parser.prog}: which {metavar.lower()}? choose one of: {choices}\n", file=sys.stderr)
        parser.print_help(sys.stderr)
        return 2

    return handler
