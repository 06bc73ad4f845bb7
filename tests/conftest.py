"""Fixtures shared by every test: the default configuration and real speech."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream_app.config import Settings, load_settings
from stream_app.samples import JFK_FLAC, JFK_REFERENCE


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The validated defaults, ignoring the environment so that every run sees the same values."""
    return load_settings(env={})


@pytest.fixture(scope="session")
def jfk_path() -> Path:
    """11 s of real speech, stereo 44.1 kHz FLAC (reference text: `JFK_REFERENCE`)."""
    path = JFK_FLAC
    assert path.is_file(), f"missing test audio {path}"
    return path


@pytest.fixture(scope="session")
def jfk_reference() -> str:
    """What is said in `jfk_path`."""
    return JFK_REFERENCE
