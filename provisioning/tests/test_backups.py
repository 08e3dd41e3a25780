"""Backups, restores and clones (issue 12) through the doors users use (API,
store page, admin) and the real task path: the guarded operation, the fake
helm that renders the real charts (their backup and restore CronJobs), the
fake API server holding the Jobs the platform makes from them, and a
kubelet (backupkit) that runs each Job's script, the chart's own file,
against a real MariaDB and a real S3-compatible server (moto)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from django.contrib.auth.models import Permission
from django.utils import timezone

from conftest import _token_client
from provisioning import backups as platform_backups
from provisioning import objectstore
from provisioning.tests.backupkit import Kubelet, StoreData
from provisioning.tests.dbservers import DB_PASSWORD
from stores import backups as scheduled
from stores import constants as c
from stores.models import AuditEntry, Backup, Store, StoreCredentials, StoreEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def storage(object_storage, settings):
    settings.STORE_BACKUP_S3_ENDPOINT = object_storage.endpoint
    settings.STORE_BACKUP_S3_BUCKET = object_storage.bucket
    settings.STORE_BACKUP_S3_REGION = object_storage.region
    settings.STORE_BACKUP_S3_ACCESS_KEY_FILE = str(object_storage.access_key_file)
    settings.STORE_BACKUP_S3_SECRET_KEY_FILE = str(object_storage.secret_key_file)
    settings.STORE_BACKUP_S3_PREFIX = "platform-a/"
    return object_storage


@pytest.fixture
def kubelet(cluster, mariadb, tmp_path):
    """Runs backup and restore Jobs; each store gets its own database and
    files directory, made as its namespace is first seen."""
    kubelet = Kubelet(cluster.fake.cluster)
    cluster.fake.cluster.job_runner = kubelet
    kubelet.mariadb = mariadb
    kubelet.root = tmp_path
    yield kubelet
    cluster.fake.cluster.job_runner = None


def give_data(kubelet, store, rows=("hello",)) -> None:
    """The store's shop data: a database of its own with rows (as the
    official image's entrypoint makes it), and wp-content files. ``store``
    needs only ``id`` and ``namespace`` (a Job's thread cannot read the
    test's uncommitted rows)."""
    database = f"wp_{store.id}"
    server = kubelet.mariadb
    server.create_store_database(database, DB_PASSWORD)
    server.sql("CREATE TABLE wp_posts (id INT PRIMARY KEY AUTO_INCREMENT, post_title TEXT) "
               "ENGINE=InnoDB;" + "".join(
                   f"INSERT INTO wp_posts (post_title) VALUES ('{title}');" for title in rows),
               database)
    files = kubelet.root / store.id / "wp-content"
    (files / "uploads" / "2026").mkdir(parents=True)
    (files / "uploads" / "2026" / "logo.png").write_bytes(b"\x89PNG" + store.id.encode())
    password = kubelet.root / "db-password"
    password.write_text(DB_PASSWORD + "\n")
    kubelet.stores[store.namespace] = StoreData("woocommerce", {
        "DB_HOST": "127.0.0.1", "DB_PORT": str(server.port), "DB_NAME": database,
        "DB_USER": "wordpress", "DB_PASSWORD_FILE": str(password)}, files)


def new_stores_get_an_empty_database(cluster, kubelet) -> None:
    """A store the kubelet has not seen yet (a copy being restored) gets a
    database and files of its own, with no table in it, before its first Job."""
    def run(namespace, job):
        if namespace not in kubelet.stores:
            store = Store(id=namespace.removeprefix("store-"))
            give_data(kubelet, store, rows=())
            kubelet.mariadb.sql("DROP TABLE wp_posts", f"wp_{store.id}")
        return kubelet(namespace, job)

    cluster.fake.cluster.job_runner = run


def titles(kubelet, store) -> list[str]:
    return kubelet.mariadb.sql("SELECT post_title FROM wp_posts ORDER BY id",
                               f"wp_{store.id}").split()


def create(api, eager, kubelet, name="Acme Shop", rows=("hello",)):
    with eager():
        response = api.post("/api/stores/", {"name": name, "engine": "woocommerce"},
                            format="json")
    store = Store.objects.get(pk=response.json()["id"])
    assert store.status == c.READY, store.status_message
    give_data(kubelet, store, rows)
    return store


def back_up(api, eager, store):
    with eager():
        response = api.post(f"/api/stores/{store.id}/backups/")
    assert response.status_code == 202, response.content
    return Backup.objects.get(pk=response.json()["id"])


def revisions(cluster, store) -> list[list[dict]]:
    """The rendered objects of each revision of the store's release, oldest
    first, from the release records the fake helm keeps as helm does."""
    records = sorted(
        (json.loads(base64.b64decode(s["data"]["release"]))
         for s in cluster.fake.cluster.list("secrets", store.namespace, "owner=helm")),
        key=lambda release: release["version"])
    return [[doc for doc in yaml.safe_load_all(r["manifest"]) if doc] for r in records]


def replicas(docs: list[dict], kind: str) -> set[int]:
    return {doc["spec"].get("replicas", 1) for doc in docs if doc["kind"] == kind}


def jobs(cluster, store) -> list[str]:
    """The store's backup and restore Jobs (not the chart's setup Job)."""
    return [o["metadata"]["name"] for o in cluster.fake.cluster.list(
        "jobs", store.namespace, "app.kubernetes.io/component=backup")]


def break_storage(settings) -> None:
    """Object storage refuses the next backup's writes: its bucket is one
    that does not exist (what the platform hands the Job wins over the
    CronJob's values). Earlier backups stay where they are."""
    settings.STORE_BACKUP_S3_BUCKET = "no-such-bucket-here"


# -- a backup ---------------------------------------------------------------------------
def test_a_backup_is_written_verified_and_described_by_its_manifest(
    api, eager, cluster, storage, kubelet
):
    store = create(api, eager, kubelet)
    backup = back_up(api, eager, store)
    backup.refresh_from_db()
    store.refresh_from_db()
    assert backup.status == c.BACKUP_SUCCEEDED, backup.error
    assert store.status == c.READY
    assert backup.verified_at and backup.size > 0 and len(backup.sha256) == 64
    prefix = f"platform-a/stores/{store.id}/{backup.id}/"
    assert backup.location == f"s3://{storage.bucket}/{prefix}"
    assert set(storage.object_keys(prefix)) == {f"{prefix}{name}" for name in (
        "database.sql.gz", "files.tar.gz", "parts.json", "manifest.json")}
    manifest = objectstore.read_json(storage.config, f"{prefix}manifest.json")
    assert manifest["engine"] == "woocommerce" and manifest["kind"] == c.BACKUP_MANUAL
    assert manifest["helm_revision"] == store.helm_revision
    assert {p["name"] for p in manifest["parts"]} == {"database", "files"}
    assert manifest["values"]["store"]["host"] == store.host
    # No secret of the store's in the manifest, nor in the timeline.
    secrets = StoreCredentials.objects.get(store=store).values.values()
    text = storage.read(f"{prefix}manifest.json").decode()
    events = " ".join(store.events.values_list("message", flat=True))
    assert not [s for s in secrets if s in text or s in events]
    assert storage.access_key_file.read_text().strip() not in events
    # The Job ran from the chart's CronJob, and is gone once read.
    assert kubelet.ran == [(store.namespace, f"backup-{backup.id}", 0)]
    assert jobs(cluster, store) == []
    assert [e.status_to for e in store.events.filter(kind=c.EVENT_STATUS)][-2:] == [
        c.BACKING_UP, c.READY]
    answer = api.get(f"/api/stores/{store.id}/backups/{backup.id}/").json()
    assert answer["status"] == "succeeded" and answer["sha256"] == backup.sha256


def test_a_failed_backup_is_the_backups_failure_not_the_stores(
    api, eager, cluster, storage, kubelet, client, user, settings
):
    store = create(api, eager, kubelet)
    good = back_up(api, eager, store)
    break_storage(settings)
    failed = back_up(api, eager, store)
    failed.refresh_from_db()
    store.refresh_from_db()
    assert failed.status == c.BACKUP_FAILED
    assert "backup Job failed" in failed.error and "NoSuchBucket" in failed.error
    assert failed.error.count("\n") == 0
    assert store.status == c.READY and "backup failed" in store.status_message
    good.refresh_from_db()
    assert good.status == c.BACKUP_SUCCEEDED  # earlier backups untouched
    assert storage.object_keys(f"platform-a/stores/{store.id}/{good.id}/")
    warning = store.events.filter(reason=c.REASON_BACKUP_FAILED).last()
    assert warning.details == {"backup": failed.id, "backup_status": "failed"}
    # The dashboard row says so, not only the log.
    client.force_login(user)
    assert 'data-testid="backup-failed"' in client.get("/").content.decode()


def test_a_backup_whose_job_is_killed_midway_fails_and_writes_no_manifest(
    api, eager, cluster, storage, kubelet
):
    store = create(api, eager, kubelet)
    kubelet.kill_next = True
    failed = back_up(api, eager, store)
    failed.refresh_from_db()
    assert failed.status == c.BACKUP_FAILED
    assert "exit code 137" in failed.error or "killed" in failed.error.lower(), failed.error
    assert not [k for k in storage.object_keys(f"platform-a/stores/{store.id}/")
                if k.endswith(("parts.json", "manifest.json"))]


def test_a_part_that_does_not_match_its_manifest_fails_the_backup(
    api, eager, cluster, storage, kubelet
):
    """The platform's own check after the Job: a part truncated in storage."""
    store = create(api, eager, kubelet)
    original = kubelet.__call__

    def job_then_truncate(namespace, job):
        code, message = original(namespace, job)
        prefix = next(e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
                      if e["name"] == "BACKUP_PREFIX")
        storage.write(f"{prefix}files.tar.gz", storage.read(f"{prefix}files.tar.gz")[:10])
        return code, message

    cluster.fake.cluster.job_runner = job_then_truncate
    failed = back_up(api, eager, store)
    failed.refresh_from_db()
    assert failed.status == c.BACKUP_FAILED
    assert "Part files is 10 bytes in object storage" in failed.error


# -- bad requests -----------------------------------------------------------------------
def test_backups_without_object_storage_are_refused_naming_the_setting(api, eager, cluster,
                                                                      kubelet):
    store = create(api, eager, kubelet)
    response = api.post(f"/api/stores/{store.id}/backups/")
    assert response.status_code == 400
    assert "STORE_BACKUP_S3_BUCKET" in response.json()["detail"]
    assert not Backup.objects.exists()
    assert api.post(f"/api/stores/{store.id}/clone/", {"name": "Copy"},
                    format="json").status_code == 400
    assert Store.objects.count() == 1


def test_unknown_and_other_stores_backups_are_404_and_busy_stores_409(
    api, eager, cluster, storage, kubelet, other_user
):
    store = create(api, eager, kubelet)
    backup = back_up(api, eager, store)
    for bad in ("nope", "b000000000", backup.id + "x"):
        assert api.get(f"/api/stores/{store.id}/backups/{bad}/").status_code == 404
        assert api.post(f"/api/stores/{store.id}/backups/{bad}/restore/").status_code == 404
    # A NUL byte in a URL is refused before any view (stores/middleware.py).
    assert api.get(f"/api/stores/{store.id}/backups/b\x00aaaaaaaa/").status_code == 400
    other = _token_client(other_user)
    assert other.get(f"/api/stores/{store.id}/backups/").status_code == 404
    assert other.post(f"/api/stores/{store.id}/backups/").status_code == 404
    assert other.post(f"/api/stores/{store.id}/backups/{backup.id}/restore/").status_code == 404
    # While a backup runs (no eager worker: it waits), another operation is 409.
    assert api.post(f"/api/stores/{store.id}/backups/").status_code == 202
    assert api.post(f"/api/stores/{store.id}/backups/").status_code == 409
    assert api.post(f"/api/stores/{store.id}/backups/{backup.id}/restore/").status_code == 409
    assert api.post(f"/api/stores/{store.id}/upgrade/").status_code == 409
    assert api.post(f"/api/stores/{store.id}/backups/{backup.id}/restore/", {"x": 1},
                    format="json").status_code == 400  # unknown field, before the state


# -- upgrades take a backup first ----------------------------------------------------
def test_an_upgrade_backs_up_first(api, eager, cluster, storage, kubelet):
    store = create(api, eager, kubelet)
    with eager():
        assert api.post(f"/api/stores/{store.id}/upgrade/").status_code == 202
    store.refresh_from_db()
    assert store.status == c.READY, store.status_message
    first = Backup.objects.get(store=store)
    assert (first.kind, first.status) == (c.BACKUP_PRE_UPGRADE, c.BACKUP_SUCCEEDED)
    steps = list(store.events.filter(kind=c.EVENT_STEP).values_list("step", flat=True))
    assert steps.index("Backing up the database and files") < steps.index(
        next(s for s in steps if s.startswith("Upgrading to chart")))


def test_an_upgrade_whose_backup_fails_stops_before_changing_anything(
    api, eager, cluster, storage, kubelet, staff, settings
):
    store = create(api, eager, kubelet)
    revision = store.helm_revision
    break_storage(settings)
    with eager():
        assert api.post(f"/api/stores/{store.id}/upgrade/").status_code == 202
    store.refresh_from_db()
    assert (store.status, store.status_reason) == (c.FAILED, c.REASON_BACKUP_FAILED)
    assert store.helm_revision == revision  # helm never ran
    assert not store.events.filter(step__startswith="Upgrading to chart").exists()
    # The owner cannot skip the backup; an operator can, and it is audited.
    answer = api.post(f"/api/stores/{store.id}/upgrade/", {"skip_backup": True}, format="json")
    assert answer.status_code == 403
    staff.user_permissions.add(*Permission.objects.filter(
        codename__in=["view_store", "upgrade_store"]))
    operator = _token_client(staff)
    with eager():
        answer = operator.post(f"/api/stores/{store.id}/upgrade/", {"skip_backup": True},
                               format="json")
    assert answer.status_code == 202, answer.content
    store.refresh_from_db()
    assert store.status == c.READY and store.helm_revision == revision + 1
    assert not store.skip_backup  # the choice was for that upgrade only
    assert AuditEntry.objects.filter(action="upgraded", store_id=store.id,
                                     details__skip_backup=True, actor=staff).exists()
    assert store.events.filter(message__contains="asked to go on without one").exists()


def test_an_upgrade_without_object_storage_goes_on_and_says_so(api, eager, cluster, kubelet):
    store = create(api, eager, kubelet)
    with eager():
        api.post(f"/api/stores/{store.id}/upgrade/")
    store.refresh_from_db()
    assert store.status == c.READY
    assert store.events.filter(message__contains="No backup first: no object storage").exists()


# -- restore, clone -----------------------------------------------------------------------
def test_a_restore_brings_the_data_back_after_a_safety_backup(
    api, eager, cluster, storage, kubelet
):
    store = create(api, eager, kubelet, rows=("first", "second"))
    backup = back_up(api, eager, store)
    kubelet.mariadb.sql("DELETE FROM wp_posts WHERE id = 1", f"wp_{store.id}")
    upload = kubelet.stores[store.namespace].files_dir / "uploads" / "2026" / "logo.png"
    upload.unlink()
    with eager():
        response = api.post(f"/api/stores/{store.id}/backups/{backup.id}/restore/")
    assert response.status_code == 202, response.content
    store.refresh_from_db()
    assert store.status == c.READY, store.status_message
    assert titles(kubelet, store) == ["first", "second"]
    assert upload.read_bytes() == b"\x89PNG" + store.id.encode()
    safety = Backup.objects.get(store=store, kind=c.BACKUP_PRE_RESTORE)
    assert safety.status == c.BACKUP_SUCCEEDED and safety.id in store.status_message
    steps = list(store.events.filter(kind=c.EVENT_STEP).values_list("step", flat=True))
    assert steps[-4:-1] == ["Stopping the shop for the restore", f"Restoring backup {backup.id}",
                            "Starting the shop again"]
    # The shop was stopped (the maintenance switch: no shop pods, the database
    # running) while its data was replaced, then started again.
    stopped, started = revisions(cluster, store)[-2:]
    assert replicas(stopped, "Deployment") == {0}
    assert replicas(stopped, "StatefulSet") == {1}
    assert replicas(started, "Deployment") == {1}


def clone_of(api, eager, cluster, kubelet, source: Store, name: str) -> Store:
    """A clone of ``source`` through the API, into a new store with an
    empty database of its own; ready."""
    new_stores_get_an_empty_database(cluster, kubelet)
    with eager():
        response = api.post(f"/api/stores/{source.id}/clone/", {"name": name}, format="json")
    assert response.status_code == 202, response.content
    clone = Store.objects.get(pk=response.json()["id"])
    assert clone.status == c.READY, clone.status_message
    return clone


def test_a_clone_is_a_new_store_of_the_owner_with_the_backups_data(
    api, eager, cluster, storage, kubelet, user
):
    source = create(api, eager, kubelet, rows=("order-1001",))
    backup = back_up(api, eager, source)

    clone = clone_of(api, eager, cluster, kubelet, source, "Copy of Acme")
    assert clone.owner == user and clone.host != source.host
    assert titles(kubelet, clone) == ["order-1001"]
    # The copy's data holds the source's admin login: so do its credentials.
    assert StoreCredentials.objects.get(store=clone).values == \
        StoreCredentials.objects.get(store=source).values
    assert clone.events.filter(message__contains=f"from its backup {backup.id}").exists()


def test_a_clone_over_the_quota_or_of_a_missing_backup_creates_nothing(
    api, eager, cluster, storage, kubelet, settings
):
    source = create(api, eager, kubelet)
    response = api.post(f"/api/stores/{source.id}/clone/", {"name": "Copy"}, format="json")
    assert response.status_code == 409 and "no good backup" in response.json()["detail"]
    back_up(api, eager, source)
    response = api.post(f"/api/stores/{source.id}/clone/",
                        {"name": "Copy", "backup_id": "bnotthere0"}, format="json")
    assert response.status_code == 404
    for body in ({"name": "Copy", "backup_id": 5}, {"name": "\x00"}, {"nom": "Copy"}, []):
        assert api.post(f"/api/stores/{source.id}/clone/", body,
                        format="json").status_code == 400
    settings.STORE_MAX_PER_USER = 1
    response = api.post(f"/api/stores/{source.id}/clone/", {"name": "Copy"}, format="json")
    assert response.status_code == 409 and "allowed stores" in response.json()["detail"]
    assert Store.objects.count() == 1


def test_a_deleted_store_comes_back_from_its_backup(api, eager, cluster, storage, kubelet):
    source = create(api, eager, kubelet, rows=("kept",))
    back_up(api, eager, source)
    with eager():
        api.delete(f"/api/stores/{source.id}/")
    source.refresh_from_db()
    assert source.status == c.DELETED
    assert StoreCredentials.objects.filter(store=source).exists()  # kept with its backups

    clone = clone_of(api, eager, cluster, kubelet, source, "Acme again")
    assert titles(kubelet, clone) == ["kept"]


# -- retention and schedule --------------------------------------------------------------
def test_only_the_newest_good_backups_and_the_pinned_ones_are_kept(
    api, eager, cluster, storage, kubelet, settings
):
    settings.STORE_BACKUP_KEEP = 2
    store = create(api, eager, kubelet)
    first = back_up(api, eager, store)
    Backup.objects.filter(pk=first.pk).update(pinned=True)
    taken = [back_up(api, eager, store) for _ in range(3)]
    states = {b.id: b.status for b in Backup.objects.filter(store=store)}
    assert states[first.id] == c.BACKUP_SUCCEEDED  # pinned
    assert states[taken[0].id] == c.BACKUP_EXPIRED
    assert [states[b.id] for b in taken[1:]] == [c.BACKUP_SUCCEEDED] * 2
    assert storage.object_keys(f"platform-a/stores/{store.id}/{taken[0].id}/") == []
    assert storage.object_keys(f"platform-a/stores/{store.id}/{first.id}/")


def test_a_deleted_stores_backups_go_after_the_retention_window(
    api, eager, cluster, storage, kubelet, settings
):
    store = create(api, eager, kubelet)
    backup = back_up(api, eager, store)
    with eager():
        api.delete(f"/api/stores/{store.id}/")
    assert scheduled.run_due()["expired"] == 0
    Store.objects.filter(pk=store.pk).update(deleted_at=timezone.now() - timedelta(days=15))
    assert scheduled.run_due()["expired"] == 1
    backup.refresh_from_db()
    assert backup.status == c.BACKUP_EXPIRED
    assert storage.object_keys(f"platform-a/stores/{store.id}/") == []
    assert not StoreCredentials.objects.filter(store=store).exists()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_schedule_spreads_stores_over_the_window_and_runs_each_once_a_period(settings):
    settings.STORE_BACKUP_SCHEDULE = "0 2 * * *"
    settings.STORE_BACKUP_SPREAD_MINUTES = 180
    cron = scheduled.schedule()
    stores = [Store(id=f"s{i:09d}", created_at=at("2026-11-01 00:00")) for i in range(200)]
    offsets = [scheduled.offset_of(s.id) for s in stores]
    assert all(timedelta(0) <= o < timedelta(minutes=180) for o in offsets)
    assert len({o // timedelta(minutes=10) for o in offsets}) >= 15  # spread, not bunched
    store = stores[0]
    slot = at("2026-11-30 02:00") + scheduled.offset_of(store.id)
    assert not scheduled.is_due(store, at("2026-11-29 05:00"), slot - timedelta(minutes=1), cron)
    assert scheduled.is_due(store, at("2026-11-29 05:00"), slot, cron)
    assert not scheduled.is_due(store, slot, slot + timedelta(hours=20), cron)


@pytest.mark.parametrize("bad", ["daily", "0 2 * *", "61 2 * * *"])
def test_a_bad_schedule_says_what_is_wrong(settings, bad):
    settings.STORE_BACKUP_SCHEDULE = bad
    with pytest.raises(scheduled.BadSchedule, match="STORE_BACKUP_SCHEDULE"):
        scheduled.schedule()


def test_due_stores_get_a_scheduled_backup(api, eager, cluster, storage, kubelet, settings):
    settings.STORE_BACKUP_SPREAD_MINUTES = 0
    settings.STORE_BACKUP_SCHEDULE = "0 0 * * *"  # midnight: passed since the store was ready
    store = create(api, eager, kubelet)
    Store.objects.filter(pk=store.pk).update(ready_at=timezone.now() - timedelta(days=2))
    with eager():
        assert scheduled.run_due()["started"] == 1
    backup = Backup.objects.get(store=store)
    assert (backup.kind, backup.status) == (c.BACKUP_SCHEDULED, c.BACKUP_SUCCEEDED)
    assert scheduled.run_due()["started"] == 0  # not again before the next midnight


# -- pages, admin, metrics, notifications -------------------------------------------------
def test_the_store_page_backs_up_and_restores_after_confirming(
    client, user, api, eager, cluster, storage, kubelet
):
    store = create(api, eager, kubelet)
    client.force_login(user)
    card = client.get(f"/stores/{store.id}/backups/").content.decode()
    assert "No good backup yet" in card and 'data-testid="back-up-now"' in card
    with eager():
        client.post(f"/stores/{store.id}/backups/new/")
    backup = Backup.objects.get(store=store)
    assert backup.status == c.BACKUP_SUCCEEDED
    card = client.get(f"/stores/{store.id}/backups/").content.decode()
    assert "Last good backup" in card and f"restore-{backup.id}" in card
    confirm = client.get(f"/stores/{store.id}/backups/{backup.id}/restore/").content.decode()
    assert "Orders placed since then are lost" in confirm and "safety backup" in confirm
    with eager():
        client.post(f"/stores/{store.id}/backups/{backup.id}/restore/")
    store.refresh_from_db()
    assert store.status == c.READY and f"Restored from backup {backup.id}" in \
        store.status_message
    assert client.get(f"/stores/{store.id}/backups/bnotthere0/restore/").status_code == 404


def test_the_card_says_backups_are_off_without_object_storage(client, user, api, eager,
                                                              cluster, kubelet):
    store = create(api, eager, kubelet)
    client.force_login(user)
    card = client.get(f"/stores/{store.id}/backups/").content.decode()
    assert "STORE_BACKUP_S3_BUCKET is not set" in card and "back-up-now" not in card


def test_operators_back_up_in_bulk_from_admin_with_the_permission(
    client, django_user_model, api, eager, cluster, storage, kubelet
):
    store = create(api, eager, kubelet)
    staff = django_user_model.objects.create_user("backups-op", password="x-pass-12345",
                                                  is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_store"]))
    client.force_login(staff)
    changelist = client.get("/admin/stores/store/").content.decode()
    assert "back_up_stores" not in changelist  # not without stores.backup_store
    staff.user_permissions.add(Permission.objects.get(codename="backup_store"))
    with eager():
        client.post("/admin/stores/store/", {"action": "back_up_stores",
                                             "_selected_action": [store.id]})
    assert Backup.objects.get(store=store).status == c.BACKUP_SUCCEEDED
    assert client.get("/admin/stores/backup/?status__exact=succeeded").status_code == 200


def test_metrics_show_the_age_of_each_stores_last_good_backup(
    client, api, eager, cluster, storage, kubelet, settings
):
    settings.METRICS_TOKEN = "t0ken"
    store = create(api, eager, kubelet)
    back_up(api, eager, store)
    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t0ken").content.decode()
    line = next(li for li in body.splitlines()
                if li.startswith("storeplatform_backup_last_success_age_seconds")
                and store.id in li)
    assert float(line.rsplit(" ", 1)[1]) < 120
    assert 'storeplatform_backups{engine="woocommerce",status="succeeded"} 1.0' in body


def test_a_failed_backup_notifies_the_owner_and_counts_by_reason(
    api, eager, cluster, storage, kubelet, settings, client
):
    from stores import notification_types

    settings.METRICS_TOKEN = "t0ken"
    store = create(api, eager, kubelet)
    break_storage(settings)
    back_up(api, eager, store)
    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t0ken").content.decode()
    assert 'storeplatform_backup_failures_total{engine="woocommerce",reason="job"}' in body
    kinds = [notification_types.type_for(e) for e in StoreEvent.objects.filter(store=store)]
    assert notification_types.BACKUP_FAILED in kinds
    assert notification_types.BACKUP_FAILED.email_by_default


def test_the_manifest_has_no_secret_and_the_job_keys_come_from_a_secret(
    api, eager, cluster, storage, kubelet
):
    """The object storage keys reach the Job as a Secret in the store's
    namespace; the recorded command names it and holds no key."""
    store = create(api, eager, kubelet)
    back_up(api, eager, store)
    secret = cluster.fake.cluster.get("secrets", store.namespace,
                                      platform_backups.SECRET_NAME)[1]
    assert set(secret["data"]) == {"access-key", "secret-key"}
    key = storage.secret_key_file.read_text().strip()
    records = " ".join(str(r.argv) + r.stderr for r in store.commands.all())
    assert key not in records and platform_backups.SECRET_NAME in records


def test_a_backup_whose_operation_was_force_failed_is_a_failed_backup(
    api, cluster, storage, kubelet, staff, eager
):
    from stores import services

    store = create(api, eager, kubelet)
    response = api.post(f"/api/stores/{store.id}/backups/")  # no worker picks it up
    assert response.status_code == 202
    services.force_fail(services.Actor(staff), Store.objects.get(pk=store.pk))
    assert scheduled.run_due()["abandoned"] == 1
    backup = Backup.objects.get(pk=response.json()["id"])
    assert backup.status == c.BACKUP_FAILED and "stopped before it finished" in backup.error
    # A retry of the failed operation is a new backup, taken.
    with eager():
        assert api.post(f"/api/stores/{store.id}/retry/").status_code == 202
    store.refresh_from_db()
    assert store.status == c.READY
    assert Backup.objects.filter(store=store, status=c.BACKUP_SUCCEEDED).count() == 1


def test_backup_jobs_run_the_platforms_own_image_and_its_storage_settings(
    api, eager, cluster, storage, kubelet, settings
):
    settings.STORE_BACKUP_IMAGE = "registry.example.com/storeplatform:1.2.3"
    settings.STORE_BACKUP_TIMEOUT = 900
    store = create(api, eager, kubelet)
    cronjob = cluster.fake.cluster.get("cronjobs", store.namespace, f"{store.release}-backup")[1]
    job = cronjob["spec"]["jobTemplate"]["spec"]
    container = job["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/storeplatform:1.2.3"
    assert job["activeDeadlineSeconds"] == 900
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["S3_ENDPOINT"], env["S3_BUCKET"]) == (storage.endpoint, storage.bucket)
    # The backup pods may reach the object storage's address, on its port, only.
    policies = cluster.fake.cluster.list("networkpolicies", store.namespace, "")
    egress = [rule for p in policies
              if p["spec"]["podSelector"].get("matchLabels", {}).get(
                  "app.kubernetes.io/component") == "backup"
              for rule in p["spec"].get("egress", [])]
    assert {"ipBlock": {"cidr": "127.0.0.1/32"}} in [to for rule in egress
                                                    for to in rule.get("to", [])]


def test_the_card_copies_a_store_into_a_new_one(client, user, api, eager, cluster, storage,
                                                kubelet):
    store = create(api, eager, kubelet)
    backup = back_up(api, eager, store)
    client.force_login(user)
    assert 'data-testid="clone"' in client.get(f"/stores/{store.id}/backups/").content.decode()
    response = client.post(f"/stores/{store.id}/clone/", {"name": "Acme staging"})
    copy = Store.objects.get(name="Acme staging")
    assert response.status_code == 302 and response.url == f"/stores/{copy.id}/"
    assert (copy.owner, copy.status, copy.target_backup_id) == (user, c.REQUESTED, backup.id)
    response = client.post(f"/stores/{store.id}/clone/", {"name": "\x00"}, follow=True)
    assert Store.objects.count() == 2  # a bad name creates nothing, and says why
    assert "name" in response.content.decode().lower()
