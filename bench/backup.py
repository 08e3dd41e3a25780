"""Store backups (issue 12): throughput and memory of the backup and restore scripts.

    .venv/bin/python bench/backup.py [--engine medusa|woocommerce] [--size-mb 1024]
                                     [--db-mb 50]

Runs the chart's own scripts (charts/<engine>/files/backup.sh, restore.sh),
as the Jobs run them, against real servers on loopback: moto's S3 server
(provisioning/tests/s3kit.py), PostgreSQL 16 (Medusa, the default) or
MariaDB (WooCommerce, where mariadbd is installed). The dataset:

- files: ``--size-mb`` MB of incompressible files of 1-8 MB (like product
  photos: gzip cannot shrink them, so every byte crosses the wire);
- database: about ``--db-mb`` MB of order-like rows.

It backs up (dump, tar, upload, read-back verification, parts.json), wipes
the database and the files, restores (checks every part, then loads), and
prints for each: wall time, throughput in MB/s of store data (files + the
database's on-disk size), and peak memory: the largest RSS of any single
objectstore process (the streaming uploader/downloader, whose memory must
not grow with the store) and the largest sum of RSS over the script's whole
process tree (what the Job's memory limit must hold). Sampled from /proc
every 20 ms, so a peak shorter than that can be missed.

Moto keeps objects on local disk; a real object store adds network time, so
these are upper bounds for the scripts themselves. See docs/benchmarks.md,
"Store backups".
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provisioning.tests.dbservers import MariaDB, PostgreSQL, mariadb_missing  # noqa: E402
from provisioning.tests.s3kit import MotoServer, new_bucket  # noqa: E402
from storeplatform.devservices import _pg_bin, descendants  # noqa: E402

PASSWORD = "bench-Pass-7d2k"
MB = 1024 * 1024


class PeakMemory(threading.Thread):
    """Samples the RSS of a process tree until stopped."""

    def __init__(self, root_pid: int):
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.objectstore_peak = 0
        self.tree_peak = 0
        self.done = threading.Event()

    @staticmethod
    def _rss(pid: int) -> tuple[int, bool]:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return 0, False
        rss = next((int(line.split()[1]) * 1024 for line in status.splitlines()
                    if line.startswith("VmRSS:")), 0)
        return rss, b"provisioning.objectstore" in cmdline

    def run(self) -> None:
        while not self.done.is_set():
            total = 0
            for pid in [self.root_pid, *descendants(self.root_pid)]:
                rss, is_objectstore = self._rss(pid)
                total += rss
                if is_objectstore:
                    self.objectstore_peak = max(self.objectstore_peak, rss)
            self.tree_peak = max(self.tree_peak, total)
            time.sleep(0.02)

    def stop(self) -> None:
        self.done.set()
        self.join()


def run_script(engine: str, name: str, env: dict[str, str]) -> tuple[float, PeakMemory]:
    started = time.monotonic()
    process = subprocess.Popen(["bash", str(ROOT / "charts" / engine / "files" / name)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    sampler = PeakMemory(process.pid)
    sampler.start()
    stdout, stderr = process.communicate()
    sampler.stop()
    elapsed = time.monotonic() - started
    if process.returncode:
        sys.exit(f"{name} failed ({process.returncode}):\n{stdout}\n{stderr}")
    return elapsed, sampler


def make_files(root: Path, size_mb: int) -> int:
    """Incompressible files of 1-8 MB under uploads/YYYY/MM, ``size_mb`` MB in all."""
    rng = random.Random(12)
    written = 0
    index = 0
    while written < size_mb * MB:
        size = min(rng.randint(1, 8) * MB, size_mb * MB - written)
        folder = root / "uploads" / "2026" / f"{index % 12 + 1:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"photo-{index:05d}.jpg").write_bytes(os.urandom(size))
        written += size
        index += 1
    return written


def fill_postgres(server: PostgreSQL, database: str, role: str, db_mb: int) -> int:
    server.sql(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}';"
               f"CREATE DATABASE {database} OWNER {role};")
    rows = db_mb * 2000  # about 500 bytes a row, indexes included
    server.sql(
        f"SET ROLE {role};"
        'CREATE TABLE "order" (id bigint PRIMARY KEY, email text, currency_code text, '
        "  total numeric, metadata jsonb, note text, created_at timestamptz DEFAULT now());"
        f'INSERT INTO "order" SELECT n, \'buyer\' || n || \'@example.test\', \'eur\', n * 1.5,'
        "  jsonb_build_object('n', n, 'tags', jsonb_build_array('a', 'b')),"
        f"  repeat(md5(n::text), 10) FROM generate_series(1, {rows}) n;"
        'CREATE INDEX ON "order" (email);', database)
    return int(server.sql(f"SELECT pg_database_size('{database}')", database))


def fill_mariadb(server: MariaDB, database: str, db_mb: int) -> int:
    server.create_store_database(database, PASSWORD)
    rows = db_mb * 2000
    server.sql(
        "CREATE TABLE wp_wc_orders (id bigint PRIMARY KEY, billing_email varchar(320),"
        " currency varchar(10), total_amount decimal(26,8), customer_note text,"
        " KEY billing_email (billing_email)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;"
        "INSERT INTO wp_wc_orders SELECT seq, CONCAT('buyer', seq, '@example.test'), 'EUR',"
        f" seq * 1.5, REPEAT(MD5(seq), 10) FROM seq_1_to_{rows};"
        "ANALYZE TABLE wp_wc_orders;", database)  # so information_schema has the size
    return int(server.sql(
        "SELECT SUM(data_length + index_length) FROM information_schema.tables "
        f"WHERE table_schema = '{database}'").strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", choices=["medusa", "woocommerce"], default="medusa")
    parser.add_argument("--size-mb", type=int, default=1024, help="MB of files (default 1024)")
    parser.add_argument("--db-mb", type=int, default=50, help="about MB of rows (default 50)")
    args = parser.parse_args()
    if args.engine == "woocommerce" and mariadb_missing():
        sys.exit(mariadb_missing())

    workdir = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    workdir.chmod(0o755)
    moto = MotoServer(workdir).start()
    server = None
    try:
        storage = new_bucket(moto, workdir / "s3")
        files = workdir / "files"
        files.mkdir()
        print(f"dataset: {args.size_mb} MB of files, about {args.db_mb} MB of rows "
              f"({args.engine})", flush=True)
        files_bytes = make_files(files, args.size_mb)
        if args.engine == "medusa":
            server = PostgreSQL(workdir / "pg").start()
            db_bytes = fill_postgres(server, "bench", "bench", args.db_mb)
            db = {"DB_HOST": "127.0.0.1", "DB_PORT": str(server.port), "DB_NAME": "bench",
                  "DB_USER": "bench"}
        else:
            server = MariaDB(workdir / "mariadb").start()
            db_bytes = fill_mariadb(server, "bench", args.db_mb)
            db = {"DB_HOST": "127.0.0.1", "DB_PORT": str(server.port), "DB_NAME": "bench",
                  "DB_USER": "wordpress"}
        password_file = workdir / "db-password"
        password_file.write_text(PASSWORD)
        env = {
            "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                     str(Path(_pg_bin("pg_dump")).parent), os.environ["PATH"]]),
            "PYTHONPATH": str(ROOT), "HOME": str(workdir), "TMPDIR": str(workdir),
            "BACKUP_PREFIX": "stores/bench00001/b-0001/", **storage.env, **db,
            "DB_PASSWORD_FILE": str(password_file), "FILES_DIR": str(files),
            "TERMINATION_LOG": str(workdir / "termination-log"),
        }
        data_mb = (files_bytes + db_bytes) / MB
        print(f"store data: {files_bytes / MB:.0f} MB files + {db_bytes / MB:.0f} MB database "
              f"on disk = {data_mb:.0f} MB", flush=True)

        seconds, memory = run_script(args.engine, "backup.sh", env)
        stored = sum(len(storage.read(key)) for key in storage.object_keys())
        print(f"backup:  {seconds:6.1f} s  {data_mb / seconds:6.1f} MB/s  "
              f"objectstore peak RSS {memory.objectstore_peak / MB:.0f} MiB  "
              f"process tree peak {memory.tree_peak / MB:.0f} MiB  "
              f"({stored / MB:.0f} MB stored, read back once to verify)", flush=True)

        shutil.rmtree(files)
        files.mkdir()
        seconds, memory = run_script(args.engine, "restore.sh", env)
        print(f"restore: {seconds:6.1f} s  {data_mb / seconds:6.1f} MB/s  "
              f"objectstore peak RSS {memory.objectstore_peak / MB:.0f} MiB  "
              f"process tree peak {memory.tree_peak / MB:.0f} MiB  "
              f"(every part read twice: checked, then loaded)", flush=True)
        restored = sum(p.stat().st_size for p in files.rglob("*") if p.is_file())
        if restored != files_bytes:
            sys.exit(f"restored {restored} bytes of files, expected {files_bytes}")
    finally:
        if server:
            server.stop()
        moto.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
