"""Fixtures shared by every test: users, API clients, the fake cluster.

The platform is exercised through its real doors; only the Kubernetes
cluster is a double, at the network boundary (a fake API server and ingress
on loopback) and the process boundary (a fake ``helm`` executable that
renders charts with the real helm).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
REAL_HELM = os.environ.get("REAL_HELM_BIN") or str(ROOT / ".tools" / "bin" / "helm")


@pytest.fixture(autouse=True)
def _fast_platform(settings):
    """Shrink the platform's waits so failure paths finish in milliseconds."""
    settings.STORE_RETRY_BACKOFF = 0.01
    settings.STORE_TRANSIENT_RETRIES = 2
    settings.STORE_HEARTBEAT_SECONDS = 0.2
    settings.STORE_READY_PROBE_TIMEOUT = 3
    settings.STORE_NAMESPACE_WAIT = 3
    settings.RATELIMIT_ENABLE = False
    # Test users sign in with a fast hash: PBKDF2's deliberate slowness cost
    # seconds per user on a busy 2-core machine and would let attempts
    # outlive a sign-in cool-off (test_login_throttling.py).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clean_redis():
    """Rate-limit counters and helm slots must not leak between tests."""
    from django.core.cache import cache

    yield
    with contextlib.suppress(Exception):  # a test may have stopped Redis on purpose
        cache.clear()


@pytest.fixture(scope="session")
def real_helm_bin() -> str:
    """The official helm binary (scripts/install-tools.sh puts it in .tools/bin)."""
    if not Path(REAL_HELM).exists():
        pytest.fail(f"real helm missing at {REAL_HELM}: run scripts/install-tools.sh")
    return REAL_HELM


@pytest.fixture(scope="session")
def fake_helm_bin(tmp_path_factory) -> str:
    """An executable named helm that runs the fake with this interpreter."""
    bin_dir = tmp_path_factory.mktemp("fake-helm-bin")
    wrapper = bin_dir / "helm"
    script = ROOT / "provisioning" / "tests" / "fakes" / "fake_helm.py"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory):
    """A private CA (STORE_PROBE_CA_FILE in the tests) and its certificates."""
    from provisioning.tests.fakes.certs import TestCA

    return TestCA(tmp_path_factory.mktemp("test-ca"))


class Cluster:
    """The fake cluster of one test, and its fault switches."""

    def __init__(self, fake, faults_file: Path, kubeconfig: str, helm_bin: str, settings=None):
        self.fake = fake
        self.faults_file = faults_file
        self.kubeconfig = kubeconfig
        self.helm_bin = helm_bin
        self.settings = settings

    def use_tls(self, mode: str = "per-store", issuer: str = "letsencrypt-prod") -> None:
        """Stores get HTTPS in ``mode``; the probe goes through the fake's
        HTTPS ingress and trusts the test CA (as STORE_PROBE_CA_FILE)."""
        self.settings.STORE_TLS_MODE = mode
        self.settings.STORE_SCHEME = "https"
        self.settings.STORE_TLS_CLUSTER_ISSUER = issuer
        self.settings.STORE_INGRESS_PROBE_URL = self.fake.tls_ingress_url
        if mode == "wildcard":
            self.fake.faults["default_certificate"] = "wildcard"
            self.fake.faults["wildcard_domain"] = self.settings.STORE_BASE_DOMAIN

    # The fake helm rewrites the rules file under an exclusive flock (it
    # counts down ``times``); take the lock too, or a read between its
    # truncate and its write sees an empty list.
    def helm_faults(self, *rules: dict) -> None:
        with open(self.faults_file, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(list(rules)))

    def helm_faults_left(self) -> list[dict]:
        with open(self.faults_file) as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            return json.loads(handle.read() or "[]")

    def managed_namespaces(self) -> list[str]:
        return [ns["metadata"]["name"] for ns in
                self.fake.namespaces("app.kubernetes.io/managed-by=storeplatform")]

    def env(self) -> dict[str, str]:
        """Environment a worker process needs to reach this cluster."""
        return {
            "KUBECONFIG": self.kubeconfig,
            "HELM_BIN": self.helm_bin,
            "FAKE_HELM_REAL_BIN": REAL_HELM,
            "FAKE_HELM_FAULTS": str(self.faults_file),
            "STORE_INGRESS_PROBE_URL": self.fake.ingress_url,
            "STORE_PROBE_CA_FILE": str(self.fake.tls.ca.ca_file),
        }


@pytest.fixture
def cluster(settings, monkeypatch, tmp_path, fake_helm_bin, test_ca):
    from provisioning.tests.fakes.kubeapi import FakeKubernetes

    fake = FakeKubernetes(ca=test_ca).start()
    faults = tmp_path / "helm-faults.json"
    faults.write_text("[]")
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    result = Cluster(fake, faults, kubeconfig, fake_helm_bin, settings)
    for key, value in result.env().items():
        monkeypatch.setenv(key, value)
    settings.KUBECONFIG = kubeconfig
    settings.HELM_BIN = fake_helm_bin
    settings.STORE_INGRESS_PROBE_URL = fake.ingress_url
    settings.STORE_PROBE_CA_FILE = str(test_ca.ca_file)
    yield result
    fake.stop()


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-password-1")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-password-1")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("ops", password="ops-password-1", is_staff=True,
                                                 is_superuser=True)


def api_token(user) -> str:
    """A new API token (django-rest-knox, hashed at rest) for ``user``."""
    from datetime import timedelta

    from stores.models import ApiToken

    _, token = ApiToken.objects.create(user=user, expiry=timedelta(hours=1), name="test")
    return token


def _token_client(user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(user)}")
    return client


@pytest.fixture
def api(user):
    return _token_client(user)


@pytest.fixture
def other_api(other_user):
    return _token_client(other_user)


@pytest.fixture
def staff_api(staff):
    return _token_client(staff)


@pytest.fixture
def eager(django_capture_on_commit_callbacks):
    """Run dispatched tasks in this process when the request's transaction
    commits: ``with eager(): api.post(...)``."""
    from storeplatform.celery import app

    app.conf.task_always_eager = True
    # Retry must come back as a result for apply() to run it; our tasks catch
    # everything else themselves.
    app.conf.task_eager_propagates = False

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    yield run
    app.conf.task_always_eager = False


def celery_process(env: dict[str, str], concurrency: int = 2, kind: str = "worker"):
    """A real Celery worker (or beat) on the test Redis and database, in its
    own session, logging to a file (storeplatform.devservices.ChildProcess:
    ``kill()`` is a crash, ``stop()`` a warm shutdown)."""
    import uuid

    from storeplatform.devservices import ChildProcess

    name = f"{kind}-{uuid.uuid4().hex[:8]}"
    if kind == "worker":
        args = ["worker", "--concurrency", str(concurrency), "--without-mingle",
                "--without-gossip", "-n", f"test-{name}@%h"]
    else:
        args = ["beat", "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
                "--pidfile", ""]
    return ChildProcess(
        name, [sys.executable, "-m", "celery", "-A", "storeplatform", *args, "-l", "INFO"],
        env, Path(env["STOREPLATFORM_TEST_DIR"]) / f"{name}.log", cwd=ROOT,
    )


def database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    name = s.get("TEST", {}).get("NAME") or s["NAME"]
    if not name.startswith("test_"):
        name = f"test_{name}"
    return f"postgresql://{s['USER']}@{s['HOST']}:{s['PORT']}/{name}"


@pytest.fixture
def worker_env(cluster, transactional_db, settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(cluster.env())
    env.update({
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "STORE_RETRY_BACKOFF": "0.2",
        "STORE_TRANSIENT_RETRIES": "3",
        "STORE_HEARTBEAT_SECONDS": "0.5",
        "STORE_LEASE_SECONDS": "5",
        "STORE_READY_PROBE_TIMEOUT": "10",
        "STORE_NAMESPACE_WAIT": "5",
        "STORE_RECONCILE_INTERVAL": "2",
        "PYTHONUNBUFFERED": "1",
    })
    return env


@pytest.fixture
def worker(worker_env):
    proc = celery_process(worker_env).start()
    yield proc
    proc.stop()


@pytest.fixture
def start_celery(worker_env):
    """Start more workers, or beat, inside a test; all stopped at the end."""
    started = []

    def start(kind: str = "worker", concurrency: int = 2, **env):
        proc = celery_process({**worker_env, **env}, concurrency, kind).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def _wait_for(predicate, timeout: float = 60, interval: float = 0.1, message: str = ""):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(message or f"condition not met within {timeout}s")


@pytest.fixture
def wait_for():
    """Poll until predicate() is truthy; fail with ``message`` after ``timeout``."""
    return _wait_for


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def chromium_path() -> str | None:
    import shutil

    return os.environ.get("CHROMIUM_BIN") or shutil.which("chromium") or shutil.which(
        "chromium-browser")


@pytest.fixture(scope="module")
def chromium_browser():
    """Debian's Chromium driven by Playwright, one per test module. Skips
    where none is installed, except in CI (CI=true), where a missing browser
    is a failure."""
    path = chromium_path()
    if not path:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is required in CI: apt-get install chromium")
        pytest.skip("no Chromium on this machine (apt-get install chromium to run this test)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop set in this thread while the
    # browser lives; the ORM calls of tests and database teardown in this
    # module are still synchronous.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def axe_script() -> str:
    """The source of axe-core (the accessibility checker), installed from npm
    at the version pinned in stores/tests/axe/package-lock.json by
    scripts/install-axe.sh. Skips without npm, except in CI."""
    import shutil
    import subprocess

    if not shutil.which("npm"):
        if os.environ.get("CI") == "true":
            pytest.fail("npm is required in CI for axe-core (Node 20)")
        pytest.skip("npm is not installed: axe-core cannot be installed")
    done = subprocess.run(["bash", str(ROOT / "scripts" / "install-axe.sh")],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.fail(f"scripts/install-axe.sh failed:\n{done.stdout}\n{done.stderr}")
    return (ROOT / "stores" / "tests" / "axe" / "node_modules" / "axe-core" /
            "axe.min.js").read_text()


@pytest.fixture
def chromium(chromium_browser):
    """The browser, for tests that also use the Django database."""
    yield chromium_browser
    # ORM calls made while Playwright's loop was set opened their own
    # connection; close it so the test database can be dropped.
    from django.db import connections

    connections.close_all()


@pytest.fixture
def fake_dns(settings):
    """A real DNS server on loopback, the only resolver the platform asks."""
    from provisioning.tests.fakes.dnsserver import FakeDNS

    server = FakeDNS().start()
    settings.STORE_DNS_RESOLVERS = [server.address]
    yield server
    server.stop()


# --- MariaDB and object storage (store backups, issue 12) ----------------------

@pytest.fixture(scope="session")
def mariadb():
    """A real MariaDB server (Debian's mariadb-server as a plain process on a
    temporary data directory), one per test session; skipped where it is not
    installed, except on CI, where that fails."""
    import shutil
    import tempfile

    from provisioning.tests.dbservers import MariaDB, mariadb_missing

    if mariadb_missing():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{mariadb_missing()} (CI=true requires it)")
        pytest.skip(mariadb_missing())
    # A short path: the socket's must fit in 108 bytes. World-readable: as
    # root, mariadbd runs as mysql.
    workdir = Path(tempfile.mkdtemp(prefix="mariadb-"))
    workdir.chmod(0o755)
    server = MariaDB(workdir).start()
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """A real S3-compatible server (moto_server) on loopback, one per session."""
    from provisioning.tests.s3kit import MotoServer

    server = MotoServer(tmp_path_factory.mktemp("moto")).start()
    yield server
    server.stop()


@pytest.fixture
def object_storage(moto_server, tmp_path):
    """A fresh bucket on the moto server: ``.endpoint``, ``.bucket``,
    ``.region``, ``.access_key_file``, ``.secret_key_file``, ``.config`` (a
    provisioning.objectstore.Config), ``.env`` (the S3_* variables of the
    backup scripts), and helpers ``.object_keys(prefix)``, ``.read(key)``,
    ``.write(key, body)``, ``.client()`` (provisioning/tests/s3kit.py)."""
    from provisioning.tests.s3kit import new_bucket

    return new_bucket(moto_server, tmp_path / "object-storage")
