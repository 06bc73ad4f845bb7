"""`stream-app models switch` refuses a model outside the allow-list before anything is published."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stream_app.cli.main import main


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.startswith("STREAM_APP_")]:
        monkeypatch.delenv(name)
    # nothing listens here: a command that reached Kafka would fail differently (and slowly)
    monkeypatch.setenv("STREAM_APP_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("STREAM_APP_OPTIMIZATION__MODEL_ROOTS", f'["{tmp_path}"]')


@pytest.mark.parametrize(
    ("model", "reason"),
    [("/etc", "outside the model roots"), ("models/x", "absolute folder path"), ("~root/m", "home folder")],
)
def test_a_model_outside_the_roots_is_refused_early(
    model: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "switch", model]) == 2
    out = capsys.readouterr().out
    assert reason in out and "published" not in out
