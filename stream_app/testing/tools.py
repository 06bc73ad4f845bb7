"""Tools the tests need from the machine: missing ones fail the test by name, never skip it."""

from __future__ import annotations

import shutil

INSTALL = "bash scripts/setup.sh installs it (apt-get install {name})"


def require_binary(name: str) -> str:
    """Return the path of ``name`` on PATH.

    Raises:
        AssertionError: it is not installed (a test that cannot run is a failure, not a skip).
    """
    path = shutil.which(name)
    assert path is not None, f"{name} is not installed: " + INSTALL.format(name=name)
    return path
