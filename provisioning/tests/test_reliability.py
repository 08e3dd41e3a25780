"""Every store converges, whatever crashes; nothing is lost or orphaned.

Faults are injected through the doubles (fake helm, fake API server) and
through real processes: a Celery worker killed with SIGKILL mid-helm, Redis
stopped and restarted, PostgreSQL restarted."""

import itertools
import json
import signal
from datetime import timedelta

import psutil
import pytest
from django.db import connection
from django.utils import timezone

from provisioning import housekeeping, tasks
from storeplatform import pytest_plugin
from stores import constants as c
from stores.models import CommandRecord, Orphan, Store
from stores.transitions import transition

pytestmark = pytest.mark.django_db


def create(api, name="Acme Shop"):
    response = api.post("/api/stores/", {"name": name, "engine": "woocommerce"}, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def status_of(store_id):
    return Store.objects.filter(pk=store_id).values_list("status", flat=True).first()


def statuses(store_id):
    return list(Store.objects.get(pk=store_id).events.filter(kind=c.EVENT_STATUS)
                .values_list("status_to", flat=True))


# -- the reaper and the reconciler, in-process -----------------------------------
def test_an_operation_past_its_deadline_is_failed_with_a_reason(api):
    store_id = create(api)
    transition(store_id, c.PROVISIONING, actor="worker",
               deadline_at=timezone.now() - timedelta(seconds=1), started_at=timezone.now())
    assert tasks.reconcile()["failed"] == 1
    store = Store.objects.get(pk=store_id)
    assert (store.status, store.status_reason) == (c.FAILED, c.REASON_TIMED_OUT)
    assert "passed its deadline" in store.status_message


def test_a_request_never_published_is_dispatched_by_the_reconciler(api, cluster, eager,
                                                                   settings):
    store_id = create(api)  # on_commit never ran: as if the broker was down
    Store.objects.filter(pk=store_id).update(dispatched_at=None)
    with eager():
        counts = tasks.reconcile()
    assert counts["dispatched"] == 1
    assert status_of(store_id) == c.READY


def test_a_live_lease_keeps_the_reconciler_away(api, settings):
    store_id = create(api)
    Store.objects.filter(pk=store_id).update(
        status=c.PROVISIONING, started_at=timezone.now(), dispatched_at=None,
        lease_owner="someone", lease_expires_at=timezone.now() + timedelta(seconds=60))
    assert tasks.reconcile() == {"dispatched": 0, "resumed": 0, "failed": 0}


def test_a_second_delivery_of_the_same_task_does_nothing(api, cluster, eager):
    with eager():
        store_id = create(api)
    assert tasks.provision_store.apply(args=[store_id]).get() == "skipped"
    assert CommandRecord.objects.filter(store_id=store_id, argv__contains=["upgrade"]).count() == 1


def test_deleting_a_provisioning_store_wins(api, cluster, worker, wait_for, transactional_db):
    cluster.helm_faults({"command": "upgrade", "action": "hang"})
    store_id = create(api)
    wait_for(lambda: CommandRecord.objects.filter(store_id=store_id, argv__contains=["upgrade"],
                                                  finished_at__isnull=True).exists(),
             timeout=60, message=worker.log()[-2000:])
    assert api.delete(f"/api/stores/{store_id}/").status_code == 202
    wait_for(lambda: status_of(store_id) == c.DELETED, timeout=60,
             message=worker.log()[-3000:])
    assert cluster.managed_namespaces() == []
    upgrade = CommandRecord.objects.get(store_id=store_id, argv__contains=["upgrade"])
    assert upgrade.stderr == "stopped by the platform"  # SIGTERM, then the delete ran


@pytest.fixture
def failures_refused_by_the_database(transactional_db):
    """PostgreSQL refuses to record a store failure unless it is the
    platform's last line (reason internal_error): the database failing while
    a failure is recorded, as a real constraint violation."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE stores_storeevent ADD CONSTRAINT test_refuse_failures "
                       "CHECK (status_to <> 'failed' OR reason = 'internal_error')")
    yield
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE stores_storeevent DROP CONSTRAINT test_refuse_failures")


def test_a_crash_that_escapes_the_operation_still_fails_the_store(
    api, cluster, failures_refused_by_the_database
):
    cluster.helm_faults({"command": "upgrade", "action": "fail", "stderr": "boom"})
    store_id = create(api)
    result = tasks.provision_store.apply(args=[store_id])
    assert result.failed()  # recording helm's failure raised: it escaped the operation
    store = Store.objects.get(pk=store_id)
    assert (store.status, store.status_reason) == (c.FAILED, c.REASON_INTERNAL)
    assert store.status_message == (
        "The operation stopped on an unexpected error (IntegrityError).")
    assert (store.lease_owner, store.started_at, store.deadline_at) == ("", None, None)
    assert statuses(store_id) == [c.REQUESTED, c.PROVISIONING, c.FAILED]


def test_a_worker_that_lost_its_lease_cannot_overwrite_an_operators_decision(
    api, cluster, start_celery, wait_for, staff, transactional_db
):
    cluster.helm_faults({"command": "upgrade", "action": "sleep", "seconds": 3, "times": 1})
    worker = start_celery("worker")
    store_id = create(api)
    wait_for(lambda: cluster.helm_faults_left()[0]["times"] == 0, timeout=60,
             message=worker.log()[-2000:])
    from stores import services

    assert services.force_fail(services.Actor(staff, via="admin"), Store.objects.get(pk=store_id))
    # The worker's next heartbeat finds its lease gone and it stops there,
    # writing nothing more about the store.
    wait_for(lambda: "'lease lost'" in worker.log(), timeout=60, message=worker.log()[-2000:])
    store = Store.objects.get(pk=store_id)
    assert (store.status, store.status_reason) == (c.FAILED, c.REASON_FORCE_FAILED)
    assert statuses(store_id) == [c.REQUESTED, c.PROVISIONING, c.FAILED]
    assert not store.events.filter(message__contains="LeaseLost").exists()


# -- real processes dying ----------------------------------------------------------
def left_by_a_dead_worker(store_id: str, status: str, operation: str, **fields) -> None:
    """The store as a worker leaves it that picked up ``operation`` and died:
    started a minute ago, its lease run out, nobody holding it."""
    past = timezone.now() - timedelta(minutes=1)
    Store.objects.filter(pk=store_id).update(
        status=status, operation=operation, started_at=past,
        deadline_at=timezone.now() + timedelta(minutes=10), dispatched_at=past,
        lease_owner="dead-worker:0", lease_expires_at=past, **fields)


def helm_processes(root_pid: int) -> list[psutil.Process]:
    """The fake helm processes a worker (and its pool children) started."""
    return [
        proc for proc in psutil.Process(root_pid).children(recursive=True)
        if any("fake_helm.py" in part for part in proc.cmdline())
    ]


def kill_like_a_dying_pod(worker) -> int:
    """SIGKILL the worker and the helm processes it runs: a pod dying takes
    every process in it along."""
    helms = helm_processes(worker.pid)
    worker.kill()
    for proc in helms:
        proc.send_signal(signal.SIGKILL)
    return len(helms)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_helm_is_resumed_and_the_helm_lock_recovered(
    api, cluster, start_celery, wait_for
):
    cluster.helm_faults({"command": "upgrade", "action": "sleep", "seconds": 60, "times": 1})
    first = start_celery("worker")
    beat = start_celery("beat")
    store_id = create(api)
    # helm is in the middle of its wait: the release is stored pending-install.
    wait_for(lambda: cluster.helm_faults_left()[0]["times"] == 0, timeout=60,
             message=first.log()[-2000:])
    assert kill_like_a_dying_pod(first) == 1
    start_celery("worker")  # a replacement comes up
    wait_for(lambda: status_of(store_id) in (c.READY, c.FAILED), timeout=90,
             message=f"{beat.log()[-2000:]}")
    store = Store.objects.get(pk=store_id)
    assert store.status == c.READY, (store.status_reason, store.status_message)
    messages = list(store.events.values_list("message", flat=True))
    assert any("worker stopped responding" in m for m in messages)
    assert any("left pending-install" in m for m in messages)
    assert statuses(store_id) == [c.REQUESTED, c.PROVISIONING, c.READY]
    assert cluster.managed_namespaces() == [store.namespace]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_create_while_redis_is_down_is_carried_out_when_it_returns(
    api, cluster, start_celery, wait_for, settings
):
    redis = pytest_plugin.service("redis")
    if redis is None:
        pytest.skip("REDIS_URL was given from outside; this test restarts its own Redis")
    settings.RATELIMIT_ENABLE = True  # the limiter must fail open, not 500
    start_celery("worker")
    beat = start_celery("beat")
    redis.stop()
    try:
        store_id = create(api)  # 202: persisted, publishing failed quietly
        assert status_of(store_id) == c.REQUESTED
    finally:
        redis.restart()
    wait_for(lambda: status_of(store_id) == c.READY, timeout=90,
             message=f"beat log:\n{beat.log()[-2000:]}")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_busy_worker_survives_a_redis_restart_and_finishes_its_store(
    api, cluster, start_celery, wait_for
):
    redis = pytest_plugin.service("redis")
    if redis is None:
        pytest.skip("REDIS_URL was given from outside; this test restarts its own Redis")
    cluster.helm_faults({"command": "upgrade", "action": "sleep", "seconds": 6, "times": 1})
    worker = start_celery("worker")
    store_id = create(api)
    wait_for(lambda: cluster.helm_faults_left()[0]["times"] == 0, timeout=60,
             message=worker.log()[-2000:])  # helm is running: the worker is busy
    pid = worker.pid
    redis.stop()
    try:
        wait_for(lambda: "Connection to broker lost" in worker.log(), timeout=30,
                 message=worker.log()[-3000:])
    finally:
        redis.restart()
    wait_for(lambda: status_of(store_id) in (c.READY, c.FAILED), timeout=90,
             message=worker.log()[-3000:])
    assert status_of(store_id) == c.READY
    assert worker.alive() and worker.pid == pid, worker.log()[-3000:]
    assert "AttributeError" not in worker.log()
    # The worker consumes again after the restart: a second store goes through.
    second = create(api, "Second Shop")
    wait_for(lambda: status_of(second) == c.READY, timeout=60, message=worker.log()[-3000:])


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_postgres_restarting_costs_a_503_not_a_500_and_work_goes_on(
    api, cluster, worker, wait_for
):
    postgres = pytest_plugin.service("postgres")
    if postgres is None:
        pytest.skip("DATABASE_URL was given from outside; this test restarts its own PostgreSQL")
    postgres.stop()
    try:
        connection.close()
        response = api.post("/api/stores/", {"name": "Acme", "engine": "woocommerce"},
                            format="json")
        assert response.status_code == 503
        assert "nothing was saved" in response.json()["detail"]
    finally:
        postgres.restart()
        connection.close()
    store_id = create(api)
    wait_for(lambda: status_of(store_id) == c.READY, timeout=90, message=worker.log()[-3000:])


def test_a_global_cap_limits_concurrent_helm_runs(api, cluster, start_celery, wait_for,
                                                  settings, tmp_path, transactional_db):
    log = tmp_path / "helm.log"
    settings.STORE_MAX_PER_USER = 4
    cluster.helm_faults({"command": "upgrade", "action": "sleep", "seconds": 1, "times": -1})
    start_celery("worker", concurrency=3, STORE_MAX_CONCURRENT_HELM="1",
                 FAKE_HELM_LOG=str(log))
    ids = [create(api, f"Capped {n}") for n in range(3)]
    wait_for(lambda: all(status_of(i) == c.READY for i in ids), timeout=90)
    runs = sorted((r["start"], r["end"]) for r in map(json.loads, log.read_text().splitlines())
                  if r["command"] == "upgrade")
    assert len(runs) == 3
    for (_, end), (start, _) in itertools.pairwise(runs):
        assert start >= end - 0.05, "two helm upgrades overlapped despite a cap of 1"


# -- drift -----------------------------------------------------------------------
def test_a_broken_store_is_degraded_then_recovers_on_its_own(api, cluster, eager):
    with eager():
        store_id = create(api)
    store = Store.objects.get(pk=store_id)
    cluster.fake.faults["storefront_down"] = {store.host}
    assert housekeeping.check_health()["degraded"] == 1
    store.refresh_from_db()
    assert (store.status, store.status_reason) == (c.DEGRADED, c.REASON_STOREFRONT_DOWN)
    cluster.fake.faults["storefront_down"] = set()
    assert housekeeping.check_health()["recovered"] == 1
    assert statuses(store_id)[-2:] == [c.DEGRADED, c.READY]


def test_an_unready_pod_or_missing_release_degrades_the_store(api, cluster, eager):
    with eager():
        store_id = create(api)
    store = Store.objects.get(pk=store_id)
    cluster.fake.cluster.create("pods", store.namespace, {
        "metadata": {"name": "wordpress-0"},
        "status": {"phase": "Running", "containerStatuses": [{
            "name": "wordpress", "ready": False, "restartCount": 7, "image": "wordpress",
            "imageID": "", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}})
    housekeeping.check_health()
    store.refresh_from_db()
    assert store.status_reason == c.REASON_PODS_NOT_READY
    assert "CrashLoopBackOff" in store.status_message
    cluster.fake.cluster.delete("pods", store.namespace, "wordpress-0")
    for secret in cluster.fake.cluster.list("secrets", store.namespace, "owner=helm"):
        cluster.fake.cluster.delete("secrets", store.namespace, secret["metadata"]["name"])
    housekeeping.check_health()
    store.refresh_from_db()
    assert (store.status, store.status_reason) == (c.DEGRADED, c.REASON_RELEASE_NOT_DEPLOYED)


def test_an_unreachable_cluster_gives_no_verdict(api, cluster, eager):
    with eager():
        store_id = create(api)
    cluster.fake.pause()
    assert housekeeping.check_health()["skipped"] == 1
    assert status_of(store_id) == c.READY


# -- orphans -----------------------------------------------------------------------
def orphan_namespace(cluster, name="store-zzzzzzzzzz", store_id="zzzzzzzzzz"):
    cluster.fake.cluster.create("namespaces", "", {"metadata": {"name": name, "labels": {
        c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_STORE_ID: store_id}}})


def test_orphans_are_listed_in_dry_run_and_left_alone(cluster, settings, api, eager):
    settings.STORE_ORPHAN_GRACE = 0
    with eager():
        live = create(api)
    orphan_namespace(cluster)
    counts = housekeeping.sweep_orphans(dry_run=True)
    assert counts == {"orphans": 1, "removed": 0}
    orphan = Orphan.objects.get()
    assert (orphan.namespace, orphan.why) == ("store-zzzzzzzzzz", "no store has this id")
    assert sorted(cluster.managed_namespaces()) == sorted([f"store-{live}",
                                                           "store-zzzzzzzzzz"])


def test_orphans_are_removed_after_the_grace_period(cluster, settings, wait_for):
    settings.STORE_ORPHAN_GRACE = 3600
    orphan_namespace(cluster)
    assert housekeeping.sweep_orphans(dry_run=False)["removed"] == 0  # too young
    Orphan.objects.update(first_seen=timezone.now() - timedelta(hours=2))
    assert housekeeping.sweep_orphans(dry_run=False)["removed"] == 1
    wait_for(lambda: cluster.managed_namespaces() == [], timeout=5)
    housekeeping.sweep_orphans(dry_run=False)
    assert Orphan.objects.get().removed_at is not None


def test_a_deleted_stores_leftover_namespace_is_an_orphan(api, cluster, eager, settings):
    with eager():
        store_id = create(api)
    Store.objects.filter(pk=store_id).update(status=c.DELETED)  # as if deletion skipped it
    housekeeping.sweep_orphans(dry_run=True)
    assert Orphan.objects.get().why == "its store was deleted"

