"""Start real PostgreSQL and Redis for the test run, before Django loads.

Loaded with ``-p storeplatform.pytest_plugin`` (see pyproject.toml). When
DATABASE_URL / REDIS_URL are already set, those servers are used instead.
The servers are children of the pytest process; pytest-xdist workers
inherit the URLs through the environment.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

_services = []


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    # Runs before pytest-django imports the settings, which read these.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        _start_services()
    elif os.environ.get("REDIS_URL", "").startswith("redis://"):
        # pytest-xdist workers share the Redis server: each gets a database
        # of its own (gw0 -> 1, gw1 -> 2...), so rate-limit counters, helm
        # slots and broker queues of one worker's tests never meet another's.
        url = urlsplit(os.environ["REDIS_URL"])
        db = int(worker.removeprefix("gw")) % 15 + 1
        os.environ["REDIS_URL"] = urlunsplit(url._replace(path=f"/{db}"))
    return (yield)


def _start_services() -> None:
    from storeplatform import devservices

    given = os.environ.get("TEST_SERVICES_DIR")
    workdir = Path(given or tempfile.mkdtemp(prefix="sp-test-"))
    if not given:
        # Data directories and logs of this run only (40-55 MB): gone with it.
        atexit.register(shutil.rmtree, workdir, ignore_errors=True)
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
