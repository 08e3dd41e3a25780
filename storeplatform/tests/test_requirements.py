"""The locks are what their .in files compile to, offline.

pip-compile needs the network and takes about 85 s per lock here
(docs/benchmarks.md), too slow and too flaky for every run. These tests check
the same things from the installed distributions' metadata: each lock pins
exactly the closure of its .in file (nothing missing, nothing left over), each
pin satisfies every requirement on it, and the dev lock keeps the runtime
pins. A lock edited by hand, or an .in changed without recompiling, fails here.
"""

from __future__ import annotations

import pytest
from packaging.utils import canonicalize_name

from storeplatform.tests import locks


@pytest.fixture(scope="module")
def runtime_pins() -> dict[str, str]:
    return locks.read_lock(locks.RUNTIME_LOCK)


@pytest.fixture(scope="module")
def dev_pins() -> dict[str, str]:
    return locks.read_lock(locks.DEV_LOCK)


def test_the_virtualenv_holds_the_locked_versions(dev_pins):
    # Everything below reads the installed metadata: it must be the locked one.
    mismatches = locks.installed_mismatches(dev_pins)
    assert not mismatches, (
        "this virtualenv is not requirements-dev.txt; make it so with "
        "`.venv/bin/pip install -r requirements-dev.txt`:\n  "
        + "\n  ".join(mismatches)
    )


@pytest.mark.parametrize(
    ("in_file", "lock"),
    [(locks.RUNTIME_IN, locks.RUNTIME_LOCK), (locks.DEV_IN, locks.DEV_LOCK)],
    ids=["runtime", "dev"],
)
def test_each_lock_pins_exactly_the_closure_of_its_in_file(in_file, lock):
    pins = locks.read_lock(lock)
    wanted_by = locks.closure(locks.read_in(in_file).requirements)

    missing = sorted(set(wanted_by) - set(pins) - locks.NEVER_LOCKED)
    extra = sorted(set(pins) - set(wanted_by))
    assert not missing, f"{lock.name} lacks {missing}: run pip-compile {in_file.name}"
    assert not extra, f"{lock.name} pins {extra}, which {in_file.name} does not need"
    unsatisfied = [
        f"{name}=={pins[name]} does not satisfy {requirement}"
        for name, requirements in wanted_by.items() if name in pins
        for requirement in requirements
        if not requirement.specifier.contains(pins[name], prereleases=True)
    ]
    assert not unsatisfied, f"{lock.name} is not a valid resolution:\n" + "\n".join(unsatisfied)


def test_the_dev_lock_keeps_every_runtime_pin(runtime_pins, dev_pins):
    assert locks.RUNTIME_LOCK in locks.read_in(locks.DEV_IN).constraint_files
    differing = {
        name: (version, dev_pins.get(name))
        for name, version in runtime_pins.items() if dev_pins.get(name) != version
    }
    assert not differing, f"runtime pin -> dev pin: {differing}"


def test_celery_is_installed_with_its_redis_extra():
    # Issue 17: kombu's Redis transport imports `packaging`, which kombu
    # declares only in its `redis` extra; without it worker and beat die.
    celery = [r for r in locks.read_in(locks.RUNTIME_IN).requirements
              if canonicalize_name(r.name) == "celery"]
    assert [sorted(r.extras) for r in celery] == [["redis"]]
    assert "packaging" in locks.read_lock(locks.RUNTIME_LOCK)
