"""Read the requirement files and walk what they install, offline.

The closure of a set of requirements is computed from the metadata of the
installed distributions (importlib.metadata), with environment markers and
extras evaluated as pip does for this interpreter. It is only the closure of
the *locked* versions when the virtualenv holds the locked versions, which
``installed_mismatches`` tells.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_IN = ROOT / "requirements.in"
RUNTIME_LOCK = ROOT / "requirements.txt"
DEV_IN = ROOT / "requirements-dev.in"
DEV_LOCK = ROOT / "requirements-dev.txt"
# pyproject.toml [tool.pip-tools] unsafe-package: left out of every lock.
NEVER_LOCKED = {"pip"}


@dataclass
class InFile:
    """What a requirements*.in asks for, with its -r includes resolved."""

    requirements: list[Requirement] = field(default_factory=list)
    constraint_files: list[Path] = field(default_factory=list)


def read_in(path: Path) -> InFile:
    result = InFile()
    for line in _lines(path):
        if line.startswith("-r "):
            included = read_in(path.parent / line[3:].strip())
            result.requirements += included.requirements
            result.constraint_files += included.constraint_files
        elif line.startswith("-c "):
            result.constraint_files.append(path.parent / line[3:].strip())
        else:
            result.requirements.append(Requirement(line))
    return result


def read_lock(path: Path) -> dict[str, str]:
    """{canonical name: pinned version} of a pip-compile output."""
    pins = {}
    for line in _lines(path):
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{path.name}: {line!r} is not pinned with =="
        pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def _lines(path: Path):
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            yield line


def closure(requirements: list[Requirement]) -> dict[str, list[Requirement]]:
    """Every distribution the requirements pull in on this interpreter, each
    with the requirements that pull it in (what pip-compile's "# via" says)."""
    wanted_by: dict[str, list[Requirement]] = {}
    extras_walked: dict[str, set[str]] = {}
    queue = [(requirement, set(requirement.extras)) for requirement in requirements]
    while queue:
        requirement, extras = queue.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        wanted_by.setdefault(name, []).append(requirement)
        new_extras = extras - extras_walked.get(name, set())
        if name in extras_walked and not new_extras:
            continue
        extras_walked.setdefault(name, set()).update(extras)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise AssertionError(
                f"{name} is required but not installed in this virtualenv: run scripts/test.sh "
                "(it installs requirements-dev.txt)"
            ) from None
        for dependency in (Requirement(text) for text in dist.requires or []):
            if _applies(dependency, extras_walked[name]):
                dependency.marker = None
                queue.append((dependency, set(dependency.extras)))
    return wanted_by


def _applies(dependency: Requirement, extras: set[str]) -> bool:
    if dependency.marker is None:
        return True
    return any(dependency.marker.evaluate({"extra": extra}) for extra in {"", *extras})


def installed_mismatches(pins: dict[str, str]) -> list[str]:
    """Locked distributions this virtualenv does not hold at the locked version."""
    mismatches = []
    for name, version in sorted(pins.items()):
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != version:
            mismatches.append(f"{name}: locked {version}, installed {installed}")
    return mismatches


def module_providers() -> dict[str, set[str]]:
    """{top-level module name: canonical names of the distributions providing it}."""
    return {
        module: {canonicalize_name(dist) for dist in dists}
        for module, dists in importlib.metadata.packages_distributions().items()
    }
