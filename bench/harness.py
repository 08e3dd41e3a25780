"""A complete local stack for one benchmark, on loopback, cleaned up at exit.

    from harness import Stack
    with Stack(workers=4, web=True) as stack:
        stack.api("POST", "/api/stores/", json={...})

What it starts (every process in its own session, so Ctrl-C reaches only
this script, which then stops them all):

- a fresh PostgreSQL 16 and Redis (``storeplatform.devservices``), then
  ``manage.py migrate``;
- a user with a DRF token and a large quota;
- the fake Kubernetes API and ingress (in this process, so faults can be
  switched directly), and a kubeconfig pointing at it;
- a ``helm`` wrapper that runs the fake helm, records its pid (so leftovers
  can be killed by id at the end) and the time it was spawned;
- N real Celery workers (``celery -A storeplatform worker``), optionally beat;
- the web app under gunicorn (``storeplatform.wsgi``) on a free port, so
  timings go through real HTTP.

Django is set up in this process too (same database), for the ORM reads the
benchmarks make and for the in-process test client.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from storeplatform import devservices  # noqa: E402
from storeplatform.devservices import ChildProcess as Proc  # noqa: E402
from storeplatform.devservices import descendants  # noqa: E402

REAL_HELM = os.environ.get("REAL_HELM_BIN") or str(ROOT / ".tools" / "bin" / "helm")
FAKE_HELM = ROOT / "provisioning" / "tests" / "fakes" / "fake_helm.py"
PYTHON = sys.executable

_live_stacks: list[Stack] = []


def _quiet_resets() -> None:
    """The in-process fake API prints a traceback for every client that
    hangs up (a killed helm, a paused API); those are expected here."""
    import socketserver

    original = socketserver.BaseServer.handle_error

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        original(self, request, client_address)

    socketserver.BaseServer.handle_error = handle_error


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)


def _install_signal_handlers() -> None:
    # SIGTERM/SIGHUP become SystemExit, so `with Stack()` cleans up as for Ctrl-C.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    # Started in the background by a shell, SIGINT arrives ignored: take it back.
    signal.signal(signal.SIGINT, signal.default_int_handler)


@atexit.register
def _stop_all() -> None:
    while _live_stacks:
        _live_stacks.pop().stop()


def cpu_times(root: int) -> tuple[float, float]:
    """CPU seconds of ``root`` and every process below it, as (own, reaped):
    own = user+system of the live processes, reaped = what their finished
    children used (for a Celery pool process: its helm runs)."""
    tick = os.sysconf("SC_CLK_TCK")
    own = reaped = 0.0
    for pid in [root, *descendants(root)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        own += (int(fields[11]) + int(fields[12])) / tick
        reaped += (int(fields[13]) + int(fields[14])) / tick
    return own, reaped


class Stack:
    """Everything a benchmark needs; use as a context manager."""

    def __init__(
        self,
        *,
        workers: int = 0,
        concurrency: int = 1,
        beat: bool = False,
        web: bool = True,
        web_workers: int = 2,
        render: bool = False,
        env: dict[str, str] | None = None,
        quiet: bool = False,
    ):
        self.n_workers = workers
        self.concurrency = concurrency
        self.with_beat = beat
        self.with_web = web
        self.web_workers = web_workers
        self.render = render
        self.extra_env = env or {}
        self.quiet = quiet
        self.workdir = Path(tempfile.mkdtemp(prefix="sp-bench-"))
        self.postgres = self.redis = self.fake = None
        self.workers: list[Proc] = []
        self.beat: Proc | None = None
        self.web: Proc | None = None
        self.web_url = ""
        self.token = ""
        self.user = None
        self.env: dict[str, str] = {}
        self.helm_log = self.workdir / "helm.jsonl"
        self.helm_pids = self.workdir / "helm.pids"
        self.helm_faults = self.workdir / "helm-faults.json"
        self._stopped = False

    # -- life cycle -------------------------------------------------------
    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def say(self, message: str) -> None:
        if not self.quiet:
            print(f"[stack] {message}", file=sys.stderr, flush=True)

    def start(self) -> Stack:
        _install_signal_handlers()
        _quiet_resets()
        _live_stacks.append(self)
        started = time.monotonic()
        self.postgres = devservices.start_postgres(self.workdir / "postgres", fresh=True)
        self.redis = devservices.start_redis(self.workdir / "redis")
        database_url = devservices.create_database(self.postgres, "storeplatform")

        from provisioning.tests.fakes.kubeapi import FakeKubernetes

        self.fake = FakeKubernetes().start()
        kubeconfig = self.fake.write_kubeconfig(self.workdir / "kubeconfig")
        wrapper = self.workdir / "bin" / "helm"
        wrapper.parent.mkdir()
        # Run the fake under another name: a test that kills every process
        # named fake_helm.py (test_reliability) must not kill ours when the
        # suite runs at the same time.
        self.fake_helm = self.workdir / "bin" / "bench_fake_helm.py"
        self.fake_helm.symlink_to(FAKE_HELM)
        # The pid survives exec; the spawn time lets us tell the interpreter's
        # start-up apart from helm's own work.
        wrapper.write_text(
            "#!/bin/sh\n"
            f'echo $$ >> "{self.helm_pids}"\n'
            'FAKE_HELM_SPAWNED=$(date +%s.%N); export FAKE_HELM_SPAWNED\n'
            f'exec "{PYTHON}" "{self.fake_helm}" "$@"\n'
        )
        wrapper.chmod(0o755)
        self.helm_faults.write_text("[]")
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": self.redis.url,
            "DATABASE_CONN_MAX_AGE": "60",
            "KUBECONFIG": kubeconfig,
            "HELM_BIN": str(wrapper),
            "FAKE_HELM_REAL_BIN": REAL_HELM,
            "FAKE_HELM_LOG": str(self.helm_log),
            "FAKE_HELM_FAULTS": str(self.helm_faults),
            "FAKE_HELM_RENDER": "1" if self.render else "0",
            "STORE_INGRESS_PROBE_URL": self.fake.ingress_url,
            "STORE_MAX_PER_USER": "100000",
            "RATELIMIT_ENABLE": "false",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "bench-" + uuid.uuid4().hex,
            "STORE_CREDENTIALS_KEY": "bench-" + uuid.uuid4().hex,
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        os.environ.update(self.env)
        subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT,
                       env=self.env, check=True)
        import django

        django.setup()
        self.user, self.token = self.create_user("bench")
        for _ in range(self.n_workers):
            self.start_worker()
        if self.with_beat:
            self.start_beat()
        if self.with_web:
            self.start_web()
        for proc in self.workers:
            proc.wait_for_log(" ready.")
        self.say(f"stack up in {time.monotonic() - started:.1f}s: {self.n_workers} worker(s) x "
                 f"concurrency {self.concurrency}, beat={self.with_beat}, web={self.web_url}, "
                 f"workdir {self.workdir}")
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        # All at once, with one deadline: a worker in a warm shutdown waits
        # for its task (a hanging helm) until we kill it.
        procs = [p for p in [self.web, self.beat, *self.workers] if p is not None]
        for proc in procs:
            proc.terminate()
        deadline = time.monotonic() + 8
        for proc in procs:
            proc.stop(grace=max(0.1, deadline - time.monotonic()))
        self.kill_helm_leftovers()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if self.fake is not None:
            with contextlib.suppress(Exception):
                self.fake.stop()
        for service in (self.redis, self.postgres):
            if service is not None:
                with contextlib.suppress(Exception):
                    service.stop()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)
        with contextlib.suppress(ValueError):
            _live_stacks.remove(self)

    def kill_helm_leftovers(self) -> None:
        """Fake helm processes our workers started and left behind (a killed
        worker's helm keeps running, as it would for real)."""
        if not self.helm_pids.exists():
            return
        for line in self.helm_pids.read_text().split():
            pid = int(line)
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if str(self.fake_helm).encode() in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    # -- processes --------------------------------------------------------
    def start_worker(self, concurrency: int | None = None, **env) -> Proc:
        name = f"w{len(self.workers) + 1}-{uuid.uuid4().hex[:6]}"
        argv = [PYTHON, "-m", "celery", "-A", "storeplatform", "worker", "--concurrency",
                str(concurrency or self.concurrency), "--without-mingle", "--without-gossip",
                "-n", f"{name}@%h", "-l", "INFO"]
        proc = Proc(name, argv, {**self.env, **env}, self.workdir / f"{name}.log").start()
        self.workers.append(proc)
        return proc

    def stop_workers(self) -> None:
        for proc in self.workers:
            proc.stop()
        self.workers = []

    def start_beat(self) -> Proc:
        argv = [PYTHON, "-m", "celery", "-A", "storeplatform", "beat", "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile", "", "-l", "INFO"]
        self.beat = Proc("beat", argv, self.env, self.workdir / "beat.log").start()
        return self.beat

    def start_web(self) -> Proc:
        port = devservices.free_port()
        argv = [PYTHON, "-m", "gunicorn", "storeplatform.wsgi", "--bind", f"127.0.0.1:{port}",
                "--workers", str(self.web_workers), "--worker-class", "sync",
                "--timeout", "60", "--log-level", "warning"]
        self.web = Proc("web", argv, self.env, self.workdir / "web.log").start()
        devservices.wait_for_port(port, timeout=60, process=self.web.proc)
        self.web_url = f"http://127.0.0.1:{port}"
        # Import the app in every gunicorn worker before timing anything.
        import requests

        for _ in range(self.web_workers * 3):
            requests.get(f"{self.web_url}/healthz", timeout=30)
        return self.web

    # -- data ---------------------------------------------------------------
    def create_user(self, username: str, staff: bool = False):
        from django.contrib.auth import get_user_model

        from stores.models import ApiToken, Quota

        user = get_user_model().objects.create_user(
            username, password=f"{username}-password-1", is_staff=staff, is_superuser=staff
        )
        Quota.objects.create(user=user, max_stores=1_000_000)
        return user, ApiToken.objects.create(user=user, expiry=None, name="bench")[1]

    def session_cookie(self, user=None) -> dict[str, str]:
        """A logged-in session (stored in the database, so gunicorn sees it)."""
        from django.test import Client

        client = Client()
        client.force_login(user or self.user)
        return {"sessionid": client.cookies["sessionid"].value}

    def api(self, method: str, path: str, token: str | None = None, **kwargs):
        import requests

        headers = {"Authorization": f"Token {token or self.token}"}
        return requests.request(method, f"{self.web_url}{path}", headers=headers,
                                timeout=30, **kwargs)

    def cpu_snapshot(self) -> dict[str, float]:
        """CPU seconds used so far, by part of the stack."""
        workers = [cpu_times(p.pid) for p in self.workers if p.alive()]
        web = cpu_times(self.web.pid) if self.web and self.web.alive() else (0.0, 0.0)
        pg = cpu_times(self.postgres.process.pid) if self.postgres else (0.0, 0.0)
        redis = cpu_times(self.redis.process.pid) if self.redis else (0.0, 0.0)
        me = os.times()
        return {
            "celery workers": sum(w[0] for w in workers),
            "fake helm processes": sum(w[1] for w in workers),
            "gunicorn (API)": sum(web),
            "postgres": sum(pg),
            "redis": sum(redis),
            "this process (fake API, ingress, client)": me.user + me.system,
        }

    def helm_runs(self) -> list[dict]:
        if not self.helm_log.exists():
            return []
        return [json.loads(line) for line in self.helm_log.read_text().splitlines() if line]

    def set_helm_faults(self, rules: list[dict]) -> None:
        self.helm_faults.write_text(json.dumps(rules))


# -- figures ------------------------------------------------------------------
def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p95 of 20 values is the 19th smallest)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values) if values else float("nan"),
        "mean": statistics.fmean(values) if values else float("nan"),
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*header), line.format(*["-" * w for w in widths])]
    out += [line.format(*map(str, r)) for r in rows]
    return "\n".join(out)


def machine() -> str:
    load = os.getloadavg()
    mem = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
    return (f"nproc={os.cpu_count()}, memory={int(mem) // 1024} MiB, "
            f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
