"""Start real PostgreSQL and Redis for the test run, before Django loads.

Loaded with ``-p storeplatform.pytest_plugin`` (see pyproject.toml). When
DATABASE_URL / REDIS_URL are already set, those servers are used instead.
The servers are children of the pytest process; pytest-xdist workers
inherit the URLs through the environment.
"""

from __future__ import annotations

import atexit
import os
import tempfile
from pathlib import Path

import pytest

_services = []


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    # Runs before pytest-django imports the settings, which read these.
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        _start_services()
    return (yield)


def _start_services() -> None:
    from storeplatform import devservices

    workdir = Path(os.environ.get("TEST_SERVICES_DIR") or tempfile.mkdtemp(prefix="sp-test-"))
    os.environ.setdefault("STOREPLATFORM_TEST_DIR", str(workdir))
    # Live-server threads and worker processes must not keep connections
    # open past a test, or the test database cannot be dropped.
    os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")
    if not os.environ.get("DATABASE_URL"):
        postgres = devservices.start_postgres(workdir / "postgres", fresh=True)
        _services.append(postgres)
        os.environ["DATABASE_URL"] = postgres.url
    if not os.environ.get("REDIS_URL"):
        redis = devservices.start_redis(workdir / "redis")
        _services.append(redis)
        os.environ["REDIS_URL"] = redis.url
    atexit.register(_stop_services)


def service(name: str):
    """The Service this run started (for tests that stop and restart it),
    or None when the URL was given from outside."""
    return next((s for s in _services if s.name == name), None)


def _stop_services() -> None:
    while _services:
        _services.pop().stop()
