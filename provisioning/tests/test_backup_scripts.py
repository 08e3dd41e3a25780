"""The backup and restore scripts of the engine charts (issue 12), run as the
Jobs run them: the chart's own files (charts/*/files/backup.sh, restore.sh)
as subprocesses, against a real S3-compatible server (moto on loopback), a
real MariaDB (WooCommerce) and a real PostgreSQL 16 with its own pg_dump and
pg_restore (Medusa).

What cannot run here is Kubernetes around them: the Job, its mounts and its
termination-message file are stood in for by environment variables and
temporary directories (templates/backup.yaml sets the same variables).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from provisioning import objectstore
from provisioning.tests.chartkit import ROOT
from provisioning.tests.dbservers import DB_PASSWORD, MariaDB, PostgreSQL
from storeplatform.devservices import _pg_bin, free_port

ON_CI = os.environ.get("CI", "").lower() == "true"
PYTHON_BIN = str(Path(sys.executable).parent)
PG_BIN = str(Path(_pg_bin("pg_dump")).parent)


def missing(what: str) -> None:
    if ON_CI:
        pytest.fail(f"{what} (CI=true requires it)")
    pytest.skip(what)


def script(engine: str, name: str) -> Path:
    return ROOT / "charts" / engine / "files" / name


def run_script(engine: str, name: str, env: dict[str, str], timeout: float = 120,
               **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script(engine, name))], env=env, capture_output=True,
                          text=True, timeout=timeout, **kwargs)


def job_env(storage, tmp_path: Path, prefix: str, db: dict[str, str], files_dir: Path,
            **extra: str) -> dict[str, str]:
    """The environment templates/backup.yaml gives the Job's container."""
    password_file = tmp_path / "db-password"
    password_file.write_text(DB_PASSWORD + "\n")
    return {
        # The Job's image has the DB clients and python3 with boto3 on PATH;
        # here: this virtualenv, pgserver's PostgreSQL 16 tools, the system's.
        "PATH": os.pathsep.join([PYTHON_BIN, PG_BIN, os.environ["PATH"]]),
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "BACKUP_PREFIX": prefix,
        **storage.env,
        **db,
        "DB_PASSWORD_FILE": str(password_file),
        "FILES_DIR": str(files_dir),
        "TERMINATION_LOG": str(tmp_path / "termination-log"),
        **extra,
    }


def termination_message(tmp_path: Path) -> str:
    path = tmp_path / "termination-log"
    return path.read_text() if path.exists() else ""


def tree(root: Path) -> dict[str, tuple]:
    """Everything under ``root``: type, content hash or link target, mode."""
    found = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if path.is_symlink():
            found[relative] = ("link", os.readlink(path))
        elif path.is_dir():
            found[relative] = ("dir", path.stat().st_mode & 0o777)
        else:
            found[relative] = ("file", hashlib.sha256(path.read_bytes()).hexdigest(),
                               path.stat().st_mode & 0o777)
    return found


def make_files(root: Path, extra_bytes: int = 0) -> None:
    """A wp-content-shaped tree: uploads, a plugin, a theme, odd names."""
    (root / "uploads" / "2026" / "11").mkdir(parents=True)
    (root / "uploads" / "2026" / "11" / "mug.jpg").write_bytes(os.urandom(300_000))
    (root / "uploads" / "2026" / "11" / "mug-150x150.jpg").write_bytes(os.urandom(20_000))
    (root / "uploads" / "wc-logs").mkdir()
    (root / "uploads" / "wc-logs" / ".htaccess").write_text("deny from all\n")
    (root / "plugins" / "woocommerce").mkdir(parents=True)
    (root / "plugins" / "woocommerce" / "woocommerce.php").write_text("<?php // plugin\n")
    (root / "themes" / "storefront").mkdir(parents=True)
    (root / "themes" / "storefront" / "style.css").write_text("/* Theme Name: Storefront */\n")
    name = "Prix d'été – 50% $(off).txt"  # noqa: RUF001 - a name a shell would mangle
    (root / "uploads" / name).write_text("odd name\n")
    (root / "upgrade").mkdir()  # empty directories come back too
    (root / "index.php").write_text("<?php // Silence is golden.\n")
    (root / "index.php").chmod(0o640)
    (root / "uploads" / "latest.jpg").symlink_to("2026/11/mug.jpg")
    if extra_bytes:
        (root / "uploads" / "big.bin").write_bytes(os.urandom(extra_bytes))


def wipe(directory: Path) -> None:
    """Delete what the store could: not a volume root's lost+found (root's)."""
    for child in directory.iterdir():
        if child.name == "lost+found":
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


# --- MariaDB (WooCommerce) ---------------------------------------------------------

WORDPRESS_SCHEMA = """
CREATE TABLE wp_options (
  option_id bigint unsigned NOT NULL AUTO_INCREMENT,
  option_name varchar(191) NOT NULL DEFAULT '',
  option_value longtext NOT NULL,
  autoload varchar(20) NOT NULL DEFAULT 'yes',
  PRIMARY KEY (option_id), UNIQUE KEY option_name (option_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_520_ci;
CREATE TABLE wp_posts (
  ID bigint unsigned NOT NULL AUTO_INCREMENT,
  post_author bigint unsigned NOT NULL DEFAULT 0,
  post_date datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  post_content longtext NOT NULL,
  post_title text NOT NULL,
  post_status varchar(20) NOT NULL DEFAULT 'publish',
  post_type varchar(20) NOT NULL DEFAULT 'post',
  PRIMARY KEY (ID), KEY type_status_date (post_type, post_status, post_date, ID)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_520_ci;
CREATE TABLE wp_postmeta (
  meta_id bigint unsigned NOT NULL AUTO_INCREMENT,
  post_id bigint unsigned NOT NULL DEFAULT 0,
  meta_key varchar(255) DEFAULT NULL,
  meta_value longtext,
  PRIMARY KEY (meta_id), KEY post_id (post_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_520_ci;
CREATE TABLE wp_wc_orders (
  id bigint unsigned NOT NULL,
  status varchar(20) DEFAULT NULL,
  currency varchar(10) DEFAULT NULL,
  total_amount decimal(26,8) DEFAULT NULL,
  billing_email varchar(320) DEFAULT NULL,
  date_created_gmt datetime DEFAULT NULL,
  customer_note text,
  PRIMARY KEY (id), KEY status (status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_520_ci;
CREATE TABLE wp_wc_order_product_lookup (
  order_item_id bigint unsigned NOT NULL,
  order_id bigint unsigned NOT NULL,
  product_id bigint unsigned NOT NULL,
  product_qty int NOT NULL,
  PRIMARY KEY (order_item_id),
  CONSTRAINT fk_order FOREIGN KEY (order_id) REFERENCES wp_wc_orders (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE wp_wc_sessions_blob (id int PRIMARY KEY, payload longblob);
CREATE VIEW wp_paid_orders AS
  SELECT id, total_amount FROM wp_wc_orders WHERE status = 'wc-completed';
CREATE TRIGGER wp_posts_touch BEFORE UPDATE ON wp_posts
  FOR EACH ROW SET NEW.post_date = NEW.post_date;
"""


def wordpress_rows(count: int = 200) -> str:
    rows = [
        "INSERT INTO wp_options (option_name, option_value) VALUES "
        "('siteurl', 'http://acme-shop.localtest.me'), ('blogname', 'Acme - Läden ☕'),"
        "('woocommerce_currency', 'EUR'), ('storeplatform_seeded', '{\"version\": \"1.0\"}');",
    ]
    for n in range(1, count + 1):
        rows.append(
            f"INSERT INTO wp_posts (ID, post_date, post_content, post_title, post_type) VALUES "
            f"({n}, '2026-11-{n % 28 + 1:02d} 10:00:00', REPEAT('Lorem ipsum {n} ', 40), "
            f"'Product {n} \\'quoted\\' \\\\ back', 'product');"
            f"INSERT INTO wp_postmeta (post_id, meta_key, meta_value) VALUES "
            f"({n}, '_price', '{n}.99'), ({n}, '_sku', NULL);"
            f"INSERT INTO wp_wc_orders VALUES ({n}, "
            f"'{'wc-completed' if n % 2 else 'wc-processing'}', 'EUR', {n}.5, "
            f"'buyer{n}@example.test', '2026-11-30 12:00:00', 'Emoji 🎁 note {n}');"
            f"INSERT INTO wp_wc_order_product_lookup VALUES ({n}, {n}, {n}, {n % 5 + 1});"
        )
    rows.append("INSERT INTO wp_wc_sessions_blob VALUES (1, UNHEX(REPEAT('00FF10E2', 1000)));")
    return "\n".join(rows)


def database_fingerprint(server: MariaDB, database: str) -> dict[str, str]:
    """Every table's definition and every row, in key order, hashed. (The
    test's view and trigger are created by root: restoring them as the
    store's user is part of what is tested.)"""
    fingerprint = {}
    tables = server.sql("SELECT table_name, table_type FROM information_schema.tables "
                        f"WHERE table_schema = '{database}' ORDER BY table_name").split("\n")
    for line in filter(None, tables):
        name, kind = line.split("\t")
        show = "VIEW" if kind == "VIEW" else "TABLE"
        # Restores make the store's user the DEFINER of views, triggers and
        # routines (restore.sh): the rest of the definition must be the same.
        definition = re.sub(r"DEFINER=`[^`]*`@`[^`]*`", "DEFINER=?",
                            server.sql(f"SHOW CREATE {show} `{name}`", database))
        rows = server.sql(f"SELECT * FROM `{name}` ORDER BY 1", database)
        fingerprint[name] = hashlib.sha256((definition + rows).encode()).hexdigest()
    fingerprint["triggers"] = server.sql(
        "SELECT trigger_name, action_statement FROM information_schema.triggers "
        f"WHERE trigger_schema = '{database}'")
    return fingerprint


@pytest.fixture
def woo_store(mariadb, object_storage, tmp_path):
    """A WordPress-shaped database with rows and a wp-content tree, and the
    Job's environment to back it up under a prefix: ``env(prefix)``."""
    database = f"wp_{os.urandom(4).hex()}"
    mariadb.create_store_database(database, DB_PASSWORD)
    mariadb.sql(WORDPRESS_SCHEMA + wordpress_rows(), database)
    files = tmp_path / "html" / "wp-content"
    files.mkdir(parents=True)
    make_files(files)
    db = {"DB_HOST": "127.0.0.1", "DB_PORT": str(mariadb.port), "DB_NAME": database,
          "DB_USER": "wordpress"}

    class Store:
        server = mariadb
        name = database
        files_dir = files
        storage = object_storage

        @staticmethod
        def env(prefix: str, **extra: str) -> dict[str, str]:
            return job_env(object_storage, tmp_path, prefix, db, files, **extra)

        @staticmethod
        def fingerprint() -> dict[str, str]:
            return database_fingerprint(mariadb, database)

    return Store


def backup(store, prefix: str, engine: str = "woocommerce", **extra: str) -> dict:
    done = run_script(engine, "backup.sh", store.env(prefix, **extra))
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(store.storage.read(f"{prefix}parts.json"))


def test_a_woocommerce_backup_restores_the_same_rows_and_files(woo_store, tmp_path):
    before_db, before_files = woo_store.fingerprint(), tree(woo_store.files_dir)
    prefix = "stores/k3x9q2m1ab/b-0001/"

    manifest = backup(woo_store, prefix)

    assert manifest["format"] == 1 and manifest["engine"] == "woocommerce"
    assert manifest["started_at"] <= manifest["finished_at"] <= manifest["verified_at"]
    parts = {part["name"]: part for part in manifest["parts"]}
    assert parts["database"]["format"] == "mariadb-dump+gzip"
    assert parts["database"]["key"] == f"{prefix}database.sql.gz"
    assert parts["files"] == {**parts["files"], "key": f"{prefix}files.tar.gz",
                              "format": "tar+gzip"}
    for part in parts.values():
        body = woo_store.storage.read(part["key"])
        assert len(body) == part["size"]
        assert hashlib.sha256(body).hexdigest() == part["sha256"]
    dump = gzip.decompress(woo_store.storage.read(parts["database"]["key"])).decode()
    assert "CREATE DATABASE" not in dump  # restorable into any database name
    assert DB_PASSWORD not in dump
    assert woo_store.storage.object_keys() == sorted(f"{prefix}{name}" for name in
                                              ("database.sql.gz", "files.tar.gz", "parts.json"))

    # Wipe: another shop's worth of changes, then nothing.
    woo_store.server.sql("DELETE FROM wp_wc_order_product_lookup; DELETE FROM wp_wc_orders;"
                         "CREATE TABLE wp_added_later (id int);", woo_store.name)
    wipe(woo_store.files_dir)
    (woo_store.files_dir / "stray.php").write_text("<?php // added after the backup\n")

    done = run_script("woocommerce", "restore.sh", woo_store.env(prefix))

    assert done.returncode == 0, done.stdout + done.stderr
    assert woo_store.fingerprint() == before_db
    assert tree(woo_store.files_dir) == before_files
    assert not termination_message(tmp_path)


@pytest.mark.parametrize("damage", ["truncated database", "altered files", "missing files"])
def test_a_restore_refuses_a_damaged_backup_before_touching_anything(woo_store, tmp_path,
                                                                      damage):
    prefix = "stores/k3x9q2m1ab/b-0002/"
    manifest = backup(woo_store, prefix)
    parts = {part["name"]: part for part in manifest["parts"]}
    if damage == "truncated database":
        key = parts["database"]["key"]
        woo_store.storage.write(key, woo_store.storage.read(key)[:-100])
        part = "database"
    elif damage == "altered files":
        key = parts["files"]["key"]
        body = bytearray(woo_store.storage.read(key))
        body[len(body) // 2] ^= 0xFF  # same size, another checksum
        woo_store.storage.write(key, bytes(body))
        part = "files"
    else:
        woo_store.storage.client().delete_object(Bucket=woo_store.storage.bucket,
                                                 Key=parts["files"]["key"])
        part = "files"
    woo_store.server.sql("INSERT INTO wp_options (option_name, option_value) "
                         "VALUES ('after_backup', 'kept')", woo_store.name)
    (woo_store.files_dir / "after-backup.txt").write_text("kept\n")
    current_db, current_files = woo_store.fingerprint(), tree(woo_store.files_dir)

    done = run_script("woocommerce", "restore.sh", woo_store.env(prefix))

    assert done.returncode != 0
    message = termination_message(tmp_path)
    assert message.count("\n") == 1
    assert f"the {part} part is missing or corrupt, nothing was changed" in message
    assert woo_store.fingerprint() == current_db
    assert tree(woo_store.files_dir) == current_files


def test_a_backup_to_a_bucket_that_does_not_exist_fails_with_a_reason(woo_store, tmp_path):
    prefix = "stores/k3x9q2m1ab/b-0003/"
    env = woo_store.env(prefix, S3_BUCKET="no-such-bucket-here")

    done = run_script("woocommerce", "backup.sh", env)

    assert done.returncode != 0
    message = termination_message(tmp_path)
    assert message.startswith("backup failed while dumping the database"), message
    assert "NoSuchBucket" in message
    assert DB_PASSWORD not in done.stdout + done.stderr + message
    assert woo_store.storage.object_keys() == []


def test_a_backup_that_fails_midway_writes_no_manifest(woo_store, tmp_path):
    """The database stops answering: the dump is cut short, the backup fails
    and says where; what was uploaded is not a backup (no parts.json)."""
    prefix = "stores/k3x9q2m1ab/b-0004/"
    env = woo_store.env(prefix, DB_PORT=str(free_port()))

    done = run_script("woocommerce", "backup.sh", env)

    assert done.returncode != 0
    message = termination_message(tmp_path)
    assert message.startswith("backup failed while dumping the database"), message
    assert "Can't connect" in message
    assert f"{prefix}parts.json" not in woo_store.storage.object_keys()


def test_a_backup_killed_midway_leaves_earlier_backups_whole(woo_store, tmp_path):
    earlier = "stores/k3x9q2m1ab/b-0005/"
    backup(woo_store, earlier)
    earlier_objects = {key: woo_store.storage.read(key) for key in woo_store.storage.object_keys()}
    before_db, before_files = woo_store.fingerprint(), tree(woo_store.files_dir)
    # Enough data for several 5 MiB parts, so the kill lands mid-upload.
    (woo_store.files_dir / "uploads" / "big.bin").write_bytes(os.urandom(24 * 1024 * 1024))
    prefix = "stores/k3x9q2m1ab/b-0006/"

    job = subprocess.Popen(["bash", str(script("woocommerce", "backup.sh"))],
                           env=woo_store.env(prefix, OBJECTSTORE_PART_SIZE_MB="5"),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    deadline = time.monotonic() + 60
    while not woo_store.storage.incomplete_uploads():
        assert job.poll() is None, "the backup finished before it could be killed"
        assert time.monotonic() < deadline, "no multipart upload started within 60s"
        time.sleep(0.02)
    os.killpg(job.pid, signal.SIGKILL)  # the node died: no trap runs
    job.wait(timeout=10)

    keys = woo_store.storage.object_keys()
    assert f"{prefix}parts.json" not in keys
    assert f"{prefix}files.tar.gz" not in keys  # a multipart upload only appears when complete
    assert {key: woo_store.storage.read(key) for key in woo_store.storage.object_keys(earlier)} == \
        earlier_objects
    (woo_store.files_dir / "uploads" / "big.bin").unlink()
    woo_store.server.sql("DELETE FROM wp_postmeta", woo_store.name)

    done = run_script("woocommerce", "restore.sh", woo_store.env(earlier))

    assert done.returncode == 0, done.stdout + done.stderr
    assert woo_store.fingerprint() == before_db
    assert tree(woo_store.files_dir) == before_files


# --- PostgreSQL 16 (Medusa) --------------------------------------------------------

@pytest.fixture(scope="module")
def postgres():
    workdir = Path(tempfile.mkdtemp(prefix="pg-backup-"))
    server = PostgreSQL(workdir).start()
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


MEDUSA_SCHEMA = """
CREATE TABLE "order" (
  id text PRIMARY KEY, display_id serial, email text, currency_code text NOT NULL,
  metadata jsonb, created_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
CREATE TABLE order_line_item (
  id text PRIMARY KEY, order_id text NOT NULL REFERENCES "order" (id) ON DELETE CASCADE,
  title text NOT NULL, quantity integer NOT NULL, unit_price numeric NOT NULL,
  thumbnail text);
CREATE INDEX idx_order_email ON "order" (email);
CREATE TABLE image (id text PRIMARY KEY, url text NOT NULL, raw bytea);
INSERT INTO "order" (id, email, currency_code, metadata) VALUES
  ('order_01JD5K7Q', 'buyer@example.test', 'eur', '{"note": "Geschenk 🎁"}');
INSERT INTO order_line_item VALUES
  ('ordli_01', 'order_01JD5K7Q', 'Medusa Mug', 2, 1250, '/static/mug.jpg');
INSERT INTO image VALUES ('img_01', '/static/mug.jpg', decode(repeat('00ff', 500), 'hex'));
"""


def pg_fingerprint(server: PostgreSQL, database: str) -> str:
    return server.sql(
        'SELECT id, display_id, email, currency_code, metadata, created_at FROM "order" '
        "ORDER BY id; SELECT * FROM order_line_item ORDER BY id; "
        "SELECT id, url, md5(raw) FROM image ORDER BY id; "
        "SELECT last_value FROM order_display_id_seq; "
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1;", database)


@pytest.fixture
def medusa_store(postgres, object_storage, tmp_path):
    """A Medusa-shaped database owned by its own role (as the chart's init
    script creates it), with an order, and an uploads directory."""
    suffix = os.urandom(4).hex()
    database, role = f"medusa_{suffix}", f"medusa_{suffix}"
    password = DB_PASSWORD.replace("'", "''")
    postgres.sql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}';"
                 f"CREATE DATABASE {database} OWNER {role};")
    postgres.sql(f"SET ROLE {role};" + MEDUSA_SCHEMA, database)
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "mug.jpg").write_bytes(os.urandom(100_000))
    (uploads / "private").mkdir()
    (uploads / "private" / "export-2026-11-30.csv").write_text("id,email\n1,buyer@example.test\n")
    # The volume's root on ext4: root's, not the store's (left out, left alone).
    (uploads / "lost+found").mkdir()
    (uploads / "lost+found" / "#12345").write_text("fsck found this")

    class Store:
        server = postgres
        name = database
        user = role
        files_dir = uploads
        storage = object_storage

        @staticmethod
        def env(prefix: str, **extra: str) -> dict[str, str]:
            db = {"DB_HOST": "127.0.0.1", "DB_PORT": str(postgres.port), "DB_NAME": database,
                  "DB_USER": role}
            return job_env(object_storage, tmp_path, prefix, db, uploads, **extra)

    return Store


def test_a_medusa_backup_restores_the_order_and_uploads(medusa_store, tmp_path):
    before_db = pg_fingerprint(medusa_store.server, medusa_store.name)
    before_files = tree(medusa_store.files_dir)
    assert "order_01JD5K7Q" in before_db
    prefix = "stores/m3dus4st0r/b-0001/"

    manifest = backup(medusa_store, prefix, engine="medusa")

    assert manifest["engine"] == "medusa"
    parts = {part["name"]: part for part in manifest["parts"]}
    assert parts["database"]["format"] == "pg_dump-custom"
    assert parts["database"]["key"] == f"{prefix}database.dump"
    assert medusa_store.storage.read(parts["database"]["key"]).startswith(b"PGDMP")
    with tarfile.open(fileobj=io.BytesIO(medusa_store.storage.read(parts["files"]["key"]))) as tar:
        names = tar.getnames()
    assert "./private/export-2026-11-30.csv" in names
    assert not [name for name in names if "lost+found" in name]

    medusa_store.server.sql(
        'DROP TABLE order_line_item; DELETE FROM "order"; CREATE TABLE added_later (id int);',
        medusa_store.name)
    wipe(medusa_store.files_dir)

    done = run_script("medusa", "restore.sh", medusa_store.env(prefix))

    assert done.returncode == 0, done.stdout + done.stderr
    assert pg_fingerprint(medusa_store.server, medusa_store.name) == before_db
    assert "added_later" not in medusa_store.server.sql(r"\dt", medusa_store.name)
    assert tree(medusa_store.files_dir) == before_files
    # Restored objects belong to the store's role, and a second backup and
    # restore of a restored store work the same.
    owners = medusa_store.server.sql(
        "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'",
        medusa_store.name)
    assert owners.split() == [medusa_store.user]
    backup(medusa_store, "stores/m3dus4st0r/b-0002/", engine="medusa")
    done = run_script("medusa", "restore.sh", medusa_store.env("stores/m3dus4st0r/b-0002/"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert pg_fingerprint(medusa_store.server, medusa_store.name) == before_db


def test_a_failed_medusa_restore_leaves_the_database_as_it_was(medusa_store, tmp_path):
    """The load runs in one transaction: when it fails half-way (here an event
    trigger refuses the dump's CREATE INDEX, after the schema was dropped and
    the tables loaded), the database is as it was."""
    prefix = "stores/m3dus4st0r/b-0003/"
    backup(medusa_store, prefix, engine="medusa")
    medusa_store.server.sql(
        "CREATE SCHEMA ops; CREATE FUNCTION ops.refuse() RETURNS event_trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no space left on device (test)'; END $$;"
        "CREATE EVENT TRIGGER refuse_indexes ON ddl_command_end WHEN TAG IN ('CREATE INDEX') "
        "EXECUTE FUNCTION ops.refuse();"
        "INSERT INTO \"order\" (id, currency_code) VALUES ('order_new', 'eur')",
        medusa_store.name)
    current = pg_fingerprint(medusa_store.server, medusa_store.name)
    (medusa_store.files_dir / "after-backup.jpg").write_bytes(b"kept")
    current_files = tree(medusa_store.files_dir)

    done = run_script("medusa", "restore.sh", medusa_store.env(prefix))

    assert done.returncode != 0
    message = termination_message(tmp_path)
    assert message.startswith("restore failed while replacing the database"), message
    assert "no space left on device (test)" in message
    assert pg_fingerprint(medusa_store.server, medusa_store.name) == current
    assert "order_new" in current
    assert tree(medusa_store.files_dir) == current_files


@pytest.mark.parametrize("name", ["backup.sh", "restore.sh"])
def test_object_storage_not_configured_is_the_reason_given(medusa_store, tmp_path, name):
    """The chart's default: no bucket and no key Secret (backup.* not generated)."""
    env = {**medusa_store.env("stores/m3dus4st0r/b-0005/"), "S3_BUCKET": ""}

    done = run_script("medusa", name, env)

    assert done.returncode == 1
    assert termination_message(tmp_path) == f"{name[:-3]} failed: S3_BUCKET is not set\n"
    env = {**medusa_store.env("stores/m3dus4st0r/b-0005/"),
           "S3_ACCESS_KEY_FILE": "/run/secrets/object-storage/access-key"}
    done = run_script("medusa", name, env)
    assert done.returncode != 0
    assert "cannot read the S3 access key file /run/secrets/object-storage/access-key" in (
        termination_message(tmp_path))


def test_a_medusa_backup_restores_into_another_database(medusa_store, tmp_path):
    """The clone path: the same backup loaded into a second store's database."""
    prefix = "stores/m3dus4st0r/b-0004/"
    backup(medusa_store, prefix, engine="medusa")
    before = pg_fingerprint(medusa_store.server, medusa_store.name)
    clone = f"clone_{os.urandom(4).hex()}"
    medusa_store.server.sql(f"CREATE DATABASE {clone} OWNER {medusa_store.user}")
    clone_files = tmp_path / "clone-uploads"
    clone_files.mkdir()
    env = {**medusa_store.env(prefix), "DB_NAME": clone, "FILES_DIR": str(clone_files)}

    done = run_script("medusa", "restore.sh", env)

    assert done.returncode == 0, done.stdout + done.stderr
    assert pg_fingerprint(medusa_store.server, clone) == before
    assert tree(clone_files) == {path: entry for path, entry in tree(medusa_store.files_dir).items()
                                 if not path.startswith("lost+found")}


# --- the object-store command ------------------------------------------------------

def objectstore_cli(storage, *args: str, data: bytes = b"", **env: str):
    return subprocess.run(
        [sys.executable, "-m", "provisioning.objectstore", *args], input=data,
        capture_output=True, timeout=60, cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
             **storage.env, **env})


@pytest.mark.parametrize("size", [0, 1, 5 * 1024 * 1024, 11 * 1024 * 1024 + 3])
def test_objectstore_put_and_get_return_the_same_bytes(object_storage, size):
    data = os.urandom(size)

    put = objectstore_cli(object_storage, "put", "t/blob", data=data,
                          OBJECTSTORE_PART_SIZE_MB="5")

    assert put.returncode == 0, put.stderr
    assert json.loads(put.stdout) == {"key": "t/blob", "size": size,
                                      "sha256": hashlib.sha256(data).hexdigest()}
    got = objectstore_cli(object_storage, "get", "t/blob", "--size", str(size),
                          "--sha256", hashlib.sha256(data).hexdigest())
    assert got.returncode == 0, got.stderr
    assert got.stdout == data
    assert object_storage.incomplete_uploads() == []


def test_objectstore_verify_names_what_does_not_match(object_storage):
    objectstore_cli(object_storage, "put", "t/blob", data=b"hello")
    good = hashlib.sha256(b"hello").hexdigest()

    assert objectstore_cli(object_storage, "verify", "t/blob", "--size", "5",
                           "--sha256", good).returncode == 0
    wrong_size = objectstore_cli(object_storage, "verify", "t/blob", "--size", "6",
                                 "--sha256", good)
    assert wrong_size.returncode == objectstore.EXIT_MISMATCH
    assert wrong_size.stderr.decode() == "objectstore: t/blob is 5 bytes, expected 6\n"
    wrong_sum = objectstore_cli(object_storage, "verify", "t/blob", "--size", "5",
                                "--sha256", "0" * 64)
    assert wrong_sum.returncode == objectstore.EXIT_MISMATCH
    assert f"has sha256 {good}, expected 000" in wrong_sum.stderr.decode()
    missing_key = objectstore_cli(object_storage, "verify", "t/none", "--size", "5",
                                  "--sha256", good)
    assert missing_key.returncode == objectstore.EXIT_MISSING
    assert "does not exist" in missing_key.stderr.decode()


def test_objectstore_aborts_a_failed_multipart_upload(object_storage):
    """A put whose bucket goes away half-way leaves no object and no parts."""
    data = os.urandom(12 * 1024 * 1024)
    config = object_storage.config
    s3 = objectstore.client(config)

    class DeletingStream:
        """Reads like stdin; after the first part the bucket is emptied of
        uploads by an abort from outside, so the next part fails."""

        def __init__(self):
            self.offset = 0

        def read(self, size: int) -> bytes:
            if self.offset >= 6 * 1024 * 1024 and self.offset < 6 * 1024 * 1024 + size:
                for upload in s3.list_multipart_uploads(Bucket=config.bucket).get("Uploads", []):
                    s3.abort_multipart_upload(Bucket=config.bucket, Key=upload["Key"],
                                              UploadId=upload["UploadId"])
            chunk = data[self.offset:self.offset + size]
            self.offset += len(chunk)
            return chunk

    with pytest.raises(objectstore.ObjectStoreError, match="cannot write"):
        objectstore.put_stream(config, "t/big", DeletingStream(), part_size=5 * 1024 * 1024)
    assert objectstore.head(config, "t/big") is None
    assert object_storage.incomplete_uploads() == []


def test_objectstore_encrypts_on_put_when_asked(object_storage):
    done = objectstore_cli(object_storage, "put", "t/secret", data=b"x" * 10, S3_SSE="AES256")
    assert done.returncode == 0, done.stderr
    answer = object_storage.client().head_object(Bucket=object_storage.bucket, Key="t/secret")
    assert answer["ServerSideEncryption"] == "AES256"
    refused = objectstore_cli(object_storage, "put", "t/x", data=b"x", S3_SSE="rot13")
    assert refused.returncode == 1
    assert refused.stderr.decode() == \
        "objectstore: S3_SSE must be empty, AES256 or aws:kms, not 'rot13'\n"


def test_the_platform_reads_manifests_and_applies_retention(object_storage):
    config = object_storage.config
    objectstore.write_json(config, "stores/a/b1/parts.json", {"format": 1})
    object_storage.write("stores/a/b1/files.tar.gz", b"tar")
    object_storage.write("stores/a/b10/files.tar.gz", b"other backup")

    assert objectstore.read_json(config, "stores/a/b1/parts.json") == {"format": 1}
    assert objectstore.head(config, "stores/a/b1/files.tar.gz")["size"] == 3
    assert objectstore.delete_prefix(config, "stores/a/b1/") == 2
    assert object_storage.object_keys() == ["stores/a/b10/files.tar.gz"]
    with pytest.raises(objectstore.ObjectStoreError, match="ends with '/'"):
        objectstore.delete_prefix(config, "stores/a/b1")
    with pytest.raises(objectstore.MissingError):
        objectstore.read_json(config, "stores/a/b1/parts.json")
    assert "secret" not in repr(config)


def test_the_two_charts_share_one_backup_library():
    assert script("woocommerce", "backup-common.sh").read_bytes() == \
        script("medusa", "backup-common.sh").read_bytes()


@pytest.mark.parametrize("engine", ["woocommerce", "medusa"])
@pytest.mark.parametrize("name", ["backup.sh", "restore.sh", "backup-common.sh"])
def test_the_backup_scripts_are_shellcheck_clean(engine, name):
    shellcheck = Path(sys.executable).parent / "shellcheck"
    done = subprocess.run([str(shellcheck), "-x", str(script(engine, name))],
                          capture_output=True, text=True, cwd=script(engine, name).parent)
    assert done.returncode == 0, done.stdout
