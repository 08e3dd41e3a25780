"""Suspend and resume (issue 13), through the doors users use (API, pages,
admin) and the real task path: the guarded operation, the fake helm that
renders the real charts with the real helm, and the fake API server that
then holds what a cluster would."""

import re
import shutil
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from conftest import _token_client
from provisioning import housekeeping, kube, tasks
from provisioning.tests.test_reliability import kill_like_a_dying_pod, left_by_a_dead_worker
from stores import constants as c
from stores import fleet
from stores.models import AuditEntry, Domain, Orphan, Store, StoreEvent
from stores.services import Actor

pytestmark = pytest.mark.django_db

PAUSED_BACKEND = "storeplatform-web.storeplatform.svc.cluster.local"


@pytest.fixture(autouse=True)
def paused_backend(settings):
    settings.STORE_PAUSED_BACKEND = PAUSED_BACKEND
    settings.STORE_PAUSED_PORT = 80


def create(api, eager, name="Acme Shop"):
    with eager():
        response = api.post("/api/stores/", {"name": name, "engine": "woocommerce"},
                            format="json")
    store = Store.objects.get(pk=response.json()["id"])
    assert store.status == c.READY, store.status_message
    return store


def suspend(api, eager, store):
    with eager():
        response = api.post(f"/api/stores/{store.id}/suspend/")
    assert response.status_code == 202, response.content
    # Suspending; or already suspended where the test commits for real and the
    # eager task runs before the answer is written.
    assert response.json()["status"] in (c.SUSPENDING, c.SUSPENDED)
    store.refresh_from_db()
    return store


def statuses(store):
    return list(store.events.filter(kind=c.EVENT_STATUS).values_list("status_to", flat=True))


def workloads(cluster, store) -> dict[str, int]:
    """Replicas of every Deployment and StatefulSet in the store's namespace."""
    return {f"{res}/{obj['metadata']['name']}": obj["spec"]["replicas"]
            for res in ("deployments", "statefulsets")
            for obj in cluster.fake.cluster.list(res, store.namespace, "")}


def ingress_backends(cluster, store) -> set[str]:
    return {path["backend"]["service"]["name"]
            for ingress in cluster.fake.cluster.list("ingresses", store.namespace, "")
            for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]}


def names(cluster, resource, store) -> set[str]:
    return {o["metadata"]["name"] for o in cluster.fake.cluster.list(resource, store.namespace, "")}


def own_secrets(cluster, store) -> set[str]:
    """The store's Secrets, less helm's release records."""
    return {n for n in names(cluster, "secrets", store) if not n.startswith("sh.helm.release")}


# -- suspend and resume ----------------------------------------------------------------
def test_suspend_takes_a_ready_store_to_suspended_with_no_pods_and_its_release_deployed(
    api, eager, cluster
):
    store = create(api, eager)
    volumes = names(cluster, "persistentvolumeclaims", store)
    secrets = own_secrets(cluster, store)
    assert "store-credentials" in secrets
    assert set(workloads(cluster, store).values()) == {1}
    with eager():
        response = api.post(f"/api/stores/{store.id}/suspend/")
    assert (response.status_code, response.json()["status"]) == (202, c.SUSPENDING)
    store.refresh_from_db()
    assert store.status == c.SUSPENDED, store.status_message
    assert store.suspended and store.helm_revision == 2
    assert statuses(store)[-2:] == [c.SUSPENDING, c.SUSPENDED]
    assert store.events.filter(step="Scaling the store down to zero").exists()
    replicas = workloads(cluster, store)
    assert len(replicas) == 2 and set(replicas.values()) == {0}  # WordPress and MariaDB
    # Every CronJob suspended: WP-Cron's, and the backup and restore templates
    # (always suspended, issue 12).
    crons = cluster.fake.cluster.list("cronjobs", store.namespace, "")
    assert sorted(c["metadata"]["name"].rsplit("-", 1)[1] for c in crons) == [
        "backup", "cron", "restore"]
    assert all(c["spec"]["suspend"] is True for c in crons)
    assert kube.release_status(store.namespace, store.release) == "deployed"
    assert names(cluster, "persistentvolumeclaims", store) == volumes
    assert own_secrets(cluster, store) == secrets
    # The store's host now goes to the platform's paused page.
    assert ingress_backends(cluster, store) == {f"{store.release}-paused"}
    paused = cluster.fake.cluster.get("services", store.namespace, f"{store.release}-paused")[1]
    assert (paused["spec"]["type"], paused["spec"]["externalName"]) == (
        "ExternalName", PAUSED_BACKEND)
    assert AuditEntry.objects.filter(action="suspended", store_id=store.id, via="api").exists()


def test_resume_scales_back_probes_the_storefront_and_is_ready(api, eager, cluster):
    store = suspend(api, eager, create(api, eager))
    with eager():
        response = api.post(f"/api/stores/{store.id}/resume/")
    assert response.status_code == 202
    assert response.json()["status"] == c.RESUMING
    store.refresh_from_db()
    assert (store.status, store.suspended, store.helm_revision) == (c.READY, False, 3)
    assert statuses(store)[-4:] == [c.SUSPENDING, c.SUSPENDED, c.RESUMING, c.READY]
    resumed = store.events.filter(pk__gt=store.events.get(status_to=c.RESUMING).pk)
    steps = list(resumed.filter(kind=c.EVENT_STEP).values_list("step", flat=True))
    assert steps[-2:] == ["Scaling the store back up", "Waiting for the storefront"]
    assert set(workloads(cluster, store).values()) == {1}
    assert ingress_backends(cluster, store) == {f"{store.release}-wordpress"}
    assert f"{store.release}-paused" not in names(cluster, "services", store)


def test_a_resume_whose_storefront_never_answers_fails_and_can_be_retried(
    api, eager, cluster
):
    store = suspend(api, eager, create(api, eager))
    cluster.fake.faults["storefront_down"] = {store.host}
    with eager():
        api.post(f"/api/stores/{store.id}/resume/")
    store.refresh_from_db()
    assert (store.status, store.operation, store.status_reason) == (
        c.FAILED, c.OP_RESUME, c.REASON_STOREFRONT_DOWN)
    cluster.fake.faults["storefront_down"] = set()
    with eager():
        assert api.post(f"/api/stores/{store.id}/retry/").json()["status"] == c.RESUMING
    store.refresh_from_db()
    assert store.status == c.READY


@pytest.mark.parametrize("status", [c.REQUESTED, c.PROVISIONING, c.FAILED, c.UPGRADING,
                                    c.SUSPENDING, c.SUSPENDED, c.RESUMING, c.DELETING])
def test_suspend_is_refused_unless_the_store_is_ready_or_degraded(api, user, status):
    store = Store.objects.create(owner=user, name="Shop", slug="shop", host="shop.localtest.me",
                                 engine="woocommerce", status=status)
    response = api.post(f"/api/stores/{store.id}/suspend/")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"Only ready or degraded stores can be suspended; this one is {status}.")
    store.refresh_from_db()
    assert store.status == status and not store.suspended


@pytest.mark.parametrize("status", [c.READY, c.DEGRADED, c.FAILED, c.RESUMING])
def test_resume_is_refused_unless_the_store_is_suspended(api, user, status):
    store = Store.objects.create(owner=user, name="Shop", slug="shop", host="shop.localtest.me",
                                 engine="woocommerce", status=status)
    response = api.post(f"/api/stores/{store.id}/resume/")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"Only suspended stores can be resumed; this one is {status}.")


def test_a_degraded_store_can_be_suspended(api, eager, cluster):
    store = create(api, eager)
    Store.objects.filter(pk=store.id).update(status=c.DEGRADED)
    assert suspend(api, eager, store).status == c.SUSPENDED


def test_a_suspended_store_is_not_rolled_back(api, eager, cluster):
    store = suspend(api, eager, create(api, eager))
    response = api.post(f"/api/stores/{store.id}/rollback/", {"revision": 1}, format="json")
    assert response.status_code == 409
    assert response.json()["detail"].endswith("this one is suspended.")


def test_a_failed_suspend_is_not_rolled_back_behind_its_values_switch(api, eager, cluster):
    store = create(api, eager)
    cluster.helm_faults({"command": "upgrade", "action": "fail", "stderr": "boom"})
    store = suspend(api, eager, store)
    assert (store.status, store.operation, store.suspended) == (c.FAILED, c.OP_SUSPEND, True)
    response = api.post(f"/api/stores/{store.id}/rollback/", {"revision": 1}, format="json")
    assert response.status_code == 409
    assert response.json()["detail"] == "The store is suspended; resume it before rolling back."
    with eager():  # the owner retries the suspend instead
        assert api.post(f"/api/stores/{store.id}/retry/").json()["status"] == c.SUSPENDING
    store.refresh_from_db()
    assert store.status == c.SUSPENDED


def test_a_suspended_store_can_be_deleted(api, eager, cluster):
    store = suspend(api, eager, create(api, eager))
    with eager():
        assert api.delete(f"/api/stores/{store.id}/").status_code == 202
    store.refresh_from_db()
    assert store.status == c.DELETED
    assert cluster.managed_namespaces() == []


# -- who may --------------------------------------------------------------------------
def staff_with(django_user_model, name, *codenames):
    user = django_user_model.objects.create_user(name, password=f"{name}-password-1",
                                                 is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="stores",
                                                        codename__in=codenames))
    return _token_client(user)


def test_staff_needs_the_suspend_and_resume_permissions_for_someone_elses_store(
    django_user_model, other_user, eager, cluster
):
    store = create(_token_client(other_user), eager, name="Theirs")
    bare = staff_with(django_user_model, "bare", "view_store")
    response = bare.post(f"/api/stores/{store.id}/suspend/")
    assert response.status_code == 403
    assert "needs the permission stores.suspend_store" in response.json()["detail"]
    store.refresh_from_db()
    assert store.status == c.READY
    operator = staff_with(django_user_model, "ops2", "view_store", "suspend_store")
    with eager():
        assert operator.post(f"/api/stores/{store.id}/suspend/").status_code == 202
    store.refresh_from_db()
    assert store.status == c.SUSPENDED
    response = operator.post(f"/api/stores/{store.id}/resume/")
    assert response.status_code == 403
    assert "needs the permission stores.resume_store" in response.json()["detail"]


def test_operators_suspend_and_resume_in_bulk_from_admin(client, staff, user, eager, cluster):
    api = _token_client(user)
    stores = [create(api, eager, name=name) for name in ("First Shop", "Second Shop")]
    client.force_login(staff)
    ids = [s.id for s in stores]
    with eager():
        client.post("/admin/stores/store/", {"action": "suspend_stores",
                                             "_selected_action": ids})
    assert set(Store.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        c.SUSPENDED}
    with eager():
        client.post("/admin/stores/store/", {"action": "resume_stores", "_selected_action": ids})
    assert set(Store.objects.filter(pk__in=ids).values_list("status", flat=True)) == {c.READY}
    assert AuditEntry.objects.filter(action="resumed", via="admin").count() == 2


def test_the_owner_suspends_and_resumes_from_the_store_page_after_confirming(
    client, user, api, eager, cluster
):
    store = create(api, eager)
    client.force_login(user)
    page = client.get(f"/stores/{store.id}/").content.decode()
    assert f'href="/stores/{store.id}/suspend/"' in page
    confirm = client.get(f"/stores/{store.id}/suspend/").content.decode()
    assert "Suspend Acme Shop?" in confirm and "no CPU or memory" in confirm
    store.refresh_from_db()
    assert store.status == c.READY  # asking is not doing
    with eager():
        response = client.post(f"/stores/{store.id}/suspend/", follow=True)
    assert "Suspending Acme Shop." in response.content.decode()
    store.refresh_from_db()
    assert store.status == c.SUSPENDED
    page = client.get(f"/stores/{store.id}/").content.decode()
    assert f'href="/stores/{store.id}/resume/"' in page and "suspended-note" in page
    with eager():
        client.post(f"/stores/{store.id}/resume/")
    store.refresh_from_db()
    assert store.status == c.READY


def test_the_page_says_why_a_suspend_is_refused(client, user):
    store = Store.objects.create(owner=user, name="Shop", slug="shop", host="shop.localtest.me",
                                 engine="woocommerce", status=c.PROVISIONING)
    client.force_login(user)
    response = client.post(f"/stores/{store.id}/suspend/", follow=True)
    assert "Only ready or degraded stores can be suspended; this one is provisioning." in (
        response.content.decode())


# -- crashes, drift, orphans, fleet -----------------------------------------------------
def test_a_suspend_whose_worker_died_is_resumed_by_the_reconciler(api, eager, cluster):
    store = create(api, eager)
    left_by_a_dead_worker(store.id, c.SUSPENDING, c.OP_SUSPEND, suspended=True)
    with eager():
        assert tasks.reconcile()["resumed"] == 1
    store.refresh_from_db()
    assert store.status == c.SUSPENDED, store.status_message
    assert store.events.filter(reason=c.REASON_WORKER_LOST).exists()
    assert set(workloads(cluster, store).values()) == {0}


def test_a_resume_whose_worker_died_is_resumed_by_the_reconciler(api, eager, cluster):
    store = suspend(api, eager, create(api, eager))
    left_by_a_dead_worker(store.id, c.RESUMING, c.OP_RESUME, suspended=False)
    with eager():
        assert tasks.reconcile()["resumed"] == 1
    store.refresh_from_db()
    assert store.status == c.READY, store.status_message
    assert store.events.filter(reason=c.REASON_WORKER_LOST).exists()
    assert set(workloads(cluster, store).values()) == {1}
    assert ingress_backends(cluster, store) == {f"{store.release}-wordpress"}


def test_a_suspend_past_its_deadline_fails_with_a_reason():
    from django.contrib.auth import get_user_model

    owner = get_user_model().objects.create_user("carol", password="carol-password-1")
    store = Store.objects.create(owner=owner, name="Shop", slug="shop", host="shop.localtest.me",
                                 engine="woocommerce", status=c.SUSPENDING,
                                 operation=c.OP_SUSPEND, started_at=timezone.now(),
                                 deadline_at=timezone.now() - timedelta(seconds=1))
    assert tasks.reconcile()["failed"] == 1
    store.refresh_from_db()
    assert (store.status, store.status_reason) == (c.FAILED, c.REASON_TIMED_OUT)


def test_the_health_check_and_the_orphan_sweep_leave_a_suspended_store_alone(
    api, eager, cluster
):
    store = suspend(api, eager, create(api, eager))
    events = StoreEvent.objects.filter(store=store).count()
    counts = housekeeping.check_health()
    assert counts["checked"] == 0 and counts["degraded"] == 0
    assert housekeeping.sweep_orphans(dry_run=True)["orphans"] == 0
    store.refresh_from_db()
    assert store.status == c.SUSPENDED
    assert StoreEvent.objects.filter(store=store).count() == events
    assert not Orphan.objects.exists()


@pytest.fixture
def new_chart(settings, tmp_path):
    """The platform ships a new woocommerce chart version."""
    charts = tmp_path / "charts"
    for name in ("woocommerce", "medusa"):
        shutil.copytree(settings.CHARTS_DIR / name, charts / name)

    def release(version="0.2.0"):
        chart_yaml = charts / "woocommerce" / "Chart.yaml"
        chart_yaml.write_text(re.sub(r"(?m)^version: .*$", f"version: {version}",
                                     chart_yaml.read_text()))
        settings.CHARTS_DIR = charts

    return release


# The fleet waits for upgrades that run after their request commits: this test
# commits for real (transaction=True), so eager tasks run right away.
@pytest.mark.django_db(transaction=True)
def test_a_fleet_upgrade_upgrades_a_suspended_store_and_leaves_it_suspended(
    api, staff, eager, cluster, new_chart
):
    running = create(api, eager, name="Running Shop")
    paused = suspend(api, eager, create(api, eager, name="Paused Shop"))
    new_chart("0.2.0")
    run = fleet.start("woocommerce", Actor(staff, via="fleet"), batch_size=5, canary=1)
    assert run.total == 2
    with eager():
        for _ in range(10):  # canary, batch, done
            if run.status != run.RUNNING:
                break
            run = fleet.advance(run, Actor(staff, via="fleet"))
    assert run.status == run.DONE, run.failed
    assert sorted(run.upgraded) == sorted([running.id, paused.id])
    paused.refresh_from_db()
    running.refresh_from_db()
    assert (paused.status, paused.chart_version, paused.suspended) == (c.SUSPENDED, "0.2.0", True)
    assert (running.status, running.chart_version) == (c.READY, "0.2.0")
    assert statuses(paused)[-2:] == [c.UPGRADING, c.SUSPENDED]
    assert set(workloads(cluster, paused).values()) == {0}
    assert ingress_backends(cluster, paused) == {f"{paused.release}-paused"}


# -- the paused page --------------------------------------------------------------------
def test_a_suspended_stores_host_answers_with_the_paused_page(client, user):
    store = Store.objects.create(owner=user, name="<Acme & Co>", slug="acme",
                                 host="acme.localtest.me", engine="woocommerce",
                                 status=c.SUSPENDED, suspended=True)
    Domain.objects.create(store=store, hostname="shop.example.org", status=c.DOMAIN_ACTIVE)
    for host in ("acme.localtest.me", "acme.localtest.me:443", "shop.example.org"):
        response = client.get("/any/product/?page=2", HTTP_HOST=host)
        assert response.status_code == 503, host
        body = response.content.decode()
        assert "This store is paused" in body
        assert "&lt;Acme &amp; Co&gt;" in body and "<Acme" not in body
        assert response["Retry-After"] == "3600"
        assert response["Cache-Control"] == "no-store"


def test_a_running_stores_host_and_unknown_hosts_get_no_paused_page(client, user):
    Store.objects.create(owner=user, name="Open", slug="open", host="open.localtest.me",
                         engine="woocommerce", status=c.READY)
    for host in ("open.localtest.me", "nowhere.localtest.me", "bad host"):
        response = client.get("/", HTTP_HOST=host)
        assert response.status_code == 400, host  # Django's DisallowedHost, as before
    assert client.get("/login/").status_code == 200  # the platform's own host


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action, busy, done, replicas", [
    ("suspend", c.SUSPENDING, c.SUSPENDED, 0),
    ("resume", c.RESUMING, c.READY, 1),
])
def test_a_worker_killed_mid_suspend_or_resume_is_replaced_and_the_helm_lock_recovered(
    action, busy, done, replicas, api, cluster, start_celery, wait_for
):
    first = start_celery("worker")
    beat = start_celery("beat")
    store_id = api.post("/api/stores/", {"name": "Acme Shop", "engine": "woocommerce"},
                        format="json").json()["id"]
    status = lambda: Store.objects.get(pk=store_id).status  # noqa: E731
    wait_for(lambda: status() in (c.READY, c.FAILED), timeout=90, message=first.log()[-2000:])
    assert status() == c.READY
    if action == "resume":
        assert api.post(f"/api/stores/{store_id}/suspend/").status_code == 202
        wait_for(lambda: status() in (c.SUSPENDED, c.FAILED), timeout=90,
                 message=first.log()[-2000:])
        assert status() == c.SUSPENDED
    cluster.helm_faults({"command": "upgrade", "action": "sleep", "seconds": 60, "times": 1})
    assert api.post(f"/api/stores/{store_id}/{action}/").status_code == 202
    # helm is in the middle of its wait: the release is stored pending-upgrade.
    wait_for(lambda: cluster.helm_faults_left()[0]["times"] == 0, timeout=60,
             message=first.log()[-2000:])
    assert kill_like_a_dying_pod(first) == 1
    start_celery("worker")  # a replacement comes up
    wait_for(lambda: status() in (done, c.FAILED), timeout=120, message=beat.log()[-2000:])
    store = Store.objects.get(pk=store_id)
    assert store.status == done, (store.status_reason, store.status_message)
    assert store.suspended is (action == "suspend")
    messages = list(store.events.values_list("message", flat=True))
    assert any("worker stopped responding" in m for m in messages)
    assert any("left pending-upgrade" in m for m in messages)
    assert statuses(store)[-2:] == [busy, done]
    assert set(workloads(cluster, store).values()) == {replicas}
    if action == "resume":
        assert ingress_backends(cluster, store) == {f"{store.release}-wordpress"}
    assert kube.release_status(store.namespace, store.release) == "deployed"
