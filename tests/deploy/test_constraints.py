"""deploy/constraints.txt pins everything the image installs, within pyproject's ranges.

The image build installs with these pins (deploy/Containerfile), so a dependency
added to pyproject.toml without `make constraints` would be resolved freely at build
time: this fails first. The closure is walked through the installed distributions'
metadata (with their extras, for Linux and Python 3.11.2, the oldest image base), so
a transitive dependency missing from the file, or pinned outside what its dependant
asks, fails too.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "deploy" / "constraints.txt"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# The image's interpreter and platform, whatever the suite runs on.
IMAGE_ENVIRONMENT = {
    "python_version": "3.11",
    "python_full_version": "3.11.2",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def pins() -> dict[str, Version]:
    """The file's ``name==version`` lines by canonical name (comments skipped)."""
    pinned: dict[str, Version] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        assert match, f"not a name==version pin: {line!r}"
        name = canonicalize_name(match.group(1))
        assert name not in pinned, f"{name} pinned twice"
        pinned[name] = Version(match.group(2))
    return pinned


def applies(requirement: Requirement, extras: set[str]) -> bool:
    """Whether ``requirement`` is installed in the image for a dependant with ``extras``."""
    if requirement.marker is None:
        return True
    return any(
        requirement.marker.evaluate({**IMAGE_ENVIRONMENT, "extra": extra})
        for extra in (extras or {""})
    )


def test_every_runtime_dependency_is_pinned_within_its_range() -> None:
    pinned = pins()
    direct = [
        *PYPROJECT["project"]["dependencies"],
        *PYPROJECT["build-system"]["requires"],
        "pip",
    ]
    for text in direct:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not pinned: run `make constraints`"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{name}=={pinned[name]} is outside pyproject's {requirement.specifier}"
        )


def test_what_the_dependencies_need_is_pinned_too() -> None:
    pinned = pins()
    pending = [Requirement(text) for text in PYPROJECT["project"]["dependencies"]]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        assert name in pinned, f"{name} (needed in the image) is not pinned"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{name}=={pinned[name]} does not satisfy {requirement}"
        )
        try:
            requires = metadata.requires(requirement.name) or []
        except metadata.PackageNotFoundError:
            # Needed by the image's older 3.11 only (this interpreter has no copy to read).
            continue
        for text in requires:
            needed = Requirement(text)
            if applies(needed, set(requirement.extras)):
                pending.append(needed)
    reached = {name for name, _ in seen}
    assert {"uvloop", "greenlet", "cffi"} <= reached, "extras and platform markers are followed"


def test_the_image_build_installs_with_the_constraints() -> None:
    containerfile = (ROOT / "deploy" / "Containerfile").read_text().replace("\\\n", " ")
    assert "COPY deploy/constraints.txt ./constraints.txt" in containerfile
    steps = [step for step in containerfile.split("&&") if "/opt/consistorio/bin/pip " in step]
    installing = [step for step in steps if "uninstall" not in step]
    assert len(installing) == 3, installing
    for step in installing:
        assert "--constraint constraints.txt" in step, step
    assert "--build-constraint constraints.txt" in containerfile
    ignore = (ROOT / "deploy" / "containerignore").read_text().splitlines()
    assert "!deploy/constraints.txt" in ignore
