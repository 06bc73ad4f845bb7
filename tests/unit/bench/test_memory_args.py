"""`stream-app bench memory` takes the switch round trip's options (the benchmark itself is not run here)."""

from __future__ import annotations

from stream_app.bench.switch_memory import MODE_ENV, MODES
from stream_app.cli.main import build_parser


def test_the_round_trip_options_parse() -> None:
    args = build_parser().parse_args(["bench", "memory", "--switch-to", "base", "--switch-windows", "4"])
    assert (args.switch_to, args.switch_windows, args.no_switch) == ("base", 4, False)
    assert build_parser().parse_args(["bench", "memory", "--no-switch"]).no_switch


def test_every_mode_measured_is_the_worker_s_or_its_baseline() -> None:
    assert MODES[:2] == ("keep", "trim") and set(MODE_ENV) <= set(MODES)
