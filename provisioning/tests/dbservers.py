"""Real database servers for the backup tests and bench/backup.py: MariaDB
(Debian's mariadb-server, started as a plain process on a temporary data
directory; /work/shared/ENVIRONMENT.md) and PostgreSQL 16 (pgserver's
binaries) with password logins over TCP, as the charts run them."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

from storeplatform.devservices import _pg_bin, _pg_user_kwargs, free_port, wait_for_port

# What a store's Secret holds as its database password in these tests:
# quotes, a backslash and a colon, for option-file and pgpass syntax.
DB_PASSWORD = 'Db-pass_9x2Lq"\\:#'


def mariadb_missing() -> str:
    """Why MariaDB cannot run here, or ""."""
    if not (shutil.which("mariadbd") or Path("/usr/sbin/mariadbd").exists()):
        return "MariaDB is not installed (apt-get install mariadb-server)"
    if not shutil.which("mariadb-dump"):
        return "mariadb-dump is not installed (apt-get install mariadb-client)"
    return ""


class MariaDB:
    """mariadbd as a plain process on a temporary data directory (Debian's
    mariadb-server; see /work/shared/ENVIRONMENT.md)."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        # In the data directory: as root, mariadbd runs as mysql and writes there.
        self.socket = workdir / "data" / "sock"
        self.process: subprocess.Popen | None = None

    def start(self) -> MariaDB:
        datadir = self.workdir / "data"
        subprocess.run(["mariadb-install-db", "--user=mysql", f"--datadir={datadir}",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True)
        log = open(self.workdir / "mariadb.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults", "--user=mysql",
             f"--datadir={datadir}", f"--socket={self.socket}", f"--port={self.port}",
             "--bind-address=127.0.0.1", "--innodb-buffer-pool-size=32M",
             "--innodb-flush-log-at-trx-commit=0", "--skip-log-bin",
             f"--pid-file={datadir / 'mariadb.pid'}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_for_port(self.port, timeout=60, process=self.process)
        deadline = time.monotonic() + 30
        while not self.socket.exists():
            assert time.monotonic() < deadline, "mariadbd opened its port but no socket"
            time.sleep(0.05)
        # As the official image leaves it: no anonymous users (''@'localhost'
        # would match a TCP login from 127.0.0.1 before 'wordpress'@'%').
        self.sql("DELETE FROM mysql.global_priv WHERE User = ''; FLUSH PRIVILEGES;")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def sql(self, statements: str, database: str = "") -> str:
        """Run SQL as root over the socket; tab-separated rows out."""
        done = subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot", "--batch",
             "--skip-column-names", "--default-character-set=utf8mb4",
             *([database] if database else [])],
            input=statements, capture_output=True, text=True, timeout=60,
            errors="backslashreplace",  # binary columns
        )
        if done.returncode:
            raise AssertionError(f"mariadb failed: {done.stderr}")
        return done.stdout

    def create_store_database(self, name: str, password: str) -> None:
        """What the official image's entrypoint does for MARIADB_DATABASE/_USER:
        the database, and user wordpress with all privileges on it."""
        password = password.replace("\\", "\\\\").replace("'", "\\'")
        self.sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4;"
                 f"CREATE USER IF NOT EXISTS 'wordpress'@'%' IDENTIFIED BY '{password}';"
                 f"GRANT ALL ON `{name}`.* TO 'wordpress'@'%';")


class PostgreSQL:
    """pgserver's PostgreSQL 16 on loopback, with password (scram) logins
    over TCP as in the chart; the superuser connects over the socket."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.datadir = workdir / "pgdata"
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> PostgreSQL:
        self.datadir.mkdir(parents=True)
        user = _pg_user_kwargs(self.datadir)
        subprocess.run([_pg_bin("initdb"), "-D", str(self.datadir), "-U", "postgres",
                        "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync",
                        "--encoding=UTF8"], check=True, capture_output=True, **user)
        log = open(self.workdir / "postgres.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [_pg_bin("postgres"), "-D", str(self.datadir), "-h", "127.0.0.1",
             "-p", str(self.port), "-k", str(self.datadir), "-c", "fsync=off"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **user)
        wait_for_port(self.port, timeout=60, process=self.process)
        deadline = time.monotonic() + 30
        while subprocess.run([_pg_bin("pg_isready"), "-h", str(self.datadir),
                              "-p", str(self.port)], capture_output=True).returncode:
            assert time.monotonic() < deadline, "PostgreSQL did not become ready"
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=30)

    def sql(self, statements: str, database: str = "postgres") -> str:
        done = subprocess.run(
            [_pg_bin("psql"), "-h", str(self.datadir), "-p", str(self.port), "-U", "postgres",
             "-d", database, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"],
            input=statements, capture_output=True, text=True, timeout=60)
        if done.returncode:
            raise AssertionError(f"psql failed: {done.stderr}")
        return done.stdout
