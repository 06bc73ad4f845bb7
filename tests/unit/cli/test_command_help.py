"""What a user reads when a command is incomplete: the actions to choose from, flags explained in place."""

from __future__ import annotations

import pytest

from stream_app.cli.main import build_parser, main


@pytest.mark.parametrize(
    ("command", "actions"),
    [("models", "list, prepare, switch"), ("config", "show, check"), ("local", "up, down, status")],
)
def test_a_command_without_its_action_lists_the_actions(
    command: str, actions: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command]) == 2
    err = capsys.readouterr().err
    assert f"stream-app {command}: which action? choose one of: {actions}" in err
    assert "_command" not in err  # not argparse's variable name


def test_secure_help_says_what_it_does_for_each_action() -> None:
    local = build_parser()._subparsers._group_actions[0].choices["local"]  # type: ignore[union-attr]
    actions = local._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in ("up", "down", "status"):
        text = actions[name].format_help()
        assert "--secure" in text and "see above" not in text
        assert "SASL_SSL" in text
