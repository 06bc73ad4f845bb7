"""constraints.txt: the exact versions every install uses, within what pyproject.toml accepts."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

import k8s_render
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

CONSTRAINTS = k8s_render.REPO / "constraints.txt"


def pins(text: str | None = None) -> dict[str, Version]:
    """Package name (canonical) -> the exact version constraints.txt names."""
    text = CONSTRAINTS.read_text() if text is None else text
    out: dict[str, Version] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and re.fullmatch(r"[A-Za-z0-9_.\-]+", name.strip()), f"not an exact pin: {line!r}"
        assert canonicalize_name(name) not in out, f"pinned twice: {name}"
        out[canonicalize_name(name)] = Version(version.strip())
    return out


def declared() -> list[Requirement]:
    """Every requirement of the package and of its extras."""
    project = tomllib.loads((k8s_render.REPO / "pyproject.toml").read_text())["project"]
    listed = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        listed += extra
    return [Requirement(text) for text in listed]


def test_every_declared_requirement_is_pinned_within_its_range() -> None:
    pinned = pins()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement.name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (str(requirement), pinned[name])


def test_this_environment_is_the_one_the_constraints_name() -> None:
    # the figures a benchmark prints belong to these versions: an environment that drifted reruns setup.sh
    drifted = {}
    for name, version in pins().items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            drifted[name] = (str(version), "not installed")
            continue
        if installed != version:
            drifted[name] = (str(version), str(installed))
    assert not drifted, f"installed versions differ from constraints.txt (run scripts/setup.sh): {drifted}"


def test_every_install_path_uses_the_constraints() -> None:
    setup = (k8s_render.REPO / "scripts" / "setup.sh").read_text()
    assert re.search(r"pip install [^\n]*-c constraints\.txt[^\n]*-e \"\.\[dev,models\]\"", setup)
    dockerfile = (k8s_render.REPO / "deploy" / "Dockerfile").read_text()
    assert re.search(r"^COPY [^\n]*\bconstraints\.txt\b", dockerfile, re.MULTILINE)
    assert re.search(r"^RUN pip install -c constraints\.txt \"\.\[models\]\"", dockerfile, re.MULTILINE)
    ignore = (k8s_render.REPO / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
    assert "!constraints.txt" in ignore, "the build context would leave constraints.txt out"


def test_a_range_or_a_double_pin_is_refused() -> None:
    for text in ("numpy>=1.26\n", "numpy==2.4.6\nNumPy==2.4.6\n"):
        try:
            pins(text)
        except AssertionError:
            continue
        raise AssertionError(f"accepted {text!r}")
