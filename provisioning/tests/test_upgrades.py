"""Upgrades, rollbacks and fleet upgrades, through the fake helm (which
renders the real charts with the real helm), and the metrics they leave."""

import re
import shutil

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from stores import constants as c
from stores import fleet
from stores.models import AuditEntry, CommandRecord, FleetUpgrade, Store, StoreCredentials
from stores.services import Actor

pytestmark = pytest.mark.django_db


@pytest.fixture
def new_chart(settings, tmp_path):
    """The platform ships chart 0.2.0 of woocommerce: a copy with a new version."""
    charts = tmp_path / "charts"
    for name in ("woocommerce", "medusa"):
        shutil.copytree(settings.CHARTS_DIR / name, charts / name)

    def release(version="0.2.0"):
        chart_yaml = charts / "woocommerce" / "Chart.yaml"
        chart_yaml.write_text(re.sub(r"(?m)^version: .*$", f"version: {version}",
                                     chart_yaml.read_text()))
        settings.CHARTS_DIR = charts

    return release


def create(api, eager, name="Acme Shop"):
    with eager():
        response = api.post("/api/stores/", {"name": name, "engine": "woocommerce"},
                            format="json")
    store = Store.objects.get(pk=response.json()["id"])
    assert store.status == c.READY, store.status_message
    return store


def test_an_upgrade_moves_the_store_to_the_new_chart_with_the_same_credentials(
    api, eager, cluster, new_chart
):
    store = create(api, eager)
    creds = StoreCredentials.objects.get(store=store).values
    new_chart("0.2.0")
    with eager():
        response = api.post(f"/api/stores/{store.id}/upgrade/")
    assert response.status_code == 202
    assert response.json()["status"] == c.UPGRADING
    store.refresh_from_db()
    assert (store.status, store.chart_version, store.helm_revision) == (c.READY, "0.2.0", 2)
    assert StoreCredentials.objects.get(store=store).values == creds
    statuses = list(store.events.filter(kind=c.EVENT_STATUS).values_list("status_to", flat=True))
    assert statuses[-2:] == [c.UPGRADING, c.READY]
    assert store.events.filter(step="Upgrading to chart 0.2.0").exists()
    assert AuditEntry.objects.filter(action="upgraded", store_id=store.id).exists()


def test_revisions_come_from_helm_history_newest_first(api, eager, cluster, new_chart):
    store = create(api, eager)
    new_chart("0.2.0")
    with eager():
        api.post(f"/api/stores/{store.id}/upgrade/")
    revisions = api.get(f"/api/stores/{store.id}/revisions/").json()
    assert [(r["revision"], r["status"], r["chart"]) for r in revisions] == [
        (2, "deployed", "woocommerce-0.2.0"), (1, "superseded", "woocommerce-0.1.0")]


def test_a_rollback_returns_to_an_earlier_revision(api, eager, cluster, new_chart):
    store = create(api, eager)
    new_chart("0.2.0")
    with eager():
        api.post(f"/api/stores/{store.id}/upgrade/")
    with eager():
        response = api.post(f"/api/stores/{store.id}/rollback/", {"revision": 1}, format="json")
    assert response.status_code == 202
    assert response.json()["status"] == c.ROLLING_BACK
    store.refresh_from_db()
    assert (store.status, store.chart_version, store.helm_revision) == (c.READY, "0.1.0", 3)
    assert store.events.filter(step="Rolling back to revision 1").exists()


def test_a_rollback_to_a_revision_that_does_not_exist_is_refused(api, eager, cluster):
    store = create(api, eager)
    response = api.post(f"/api/stores/{store.id}/rollback/", {"revision": 7}, format="json")
    assert response.status_code == 400
    assert "Revision 7 does not exist; the store has revisions 1" in response.json()["detail"]
    response = api.post(f"/api/stores/{store.id}/rollback/", {"revision": 1}, format="json")
    assert response.status_code == 409  # the one running now
    response = api.post(f"/api/stores/{store.id}/rollback/", {"revision": "x"}, format="json")
    assert response.status_code == 400


def test_revisions_are_read_from_what_the_platform_recorded_not_from_helm(
    api, client, user, eager, cluster
):
    store = create(api, eager)
    cluster.fake.pause()  # no cluster, and no helm run on a page view
    commands = CommandRecord.objects.filter(store=store).count()
    response = api.get(f"/api/stores/{store.id}/revisions/")
    assert response.status_code == 200
    assert [(r["revision"], r["status"]) for r in response.json()] == [(1, "deployed")]
    client.force_login(user)
    assert 'data-revision="1"' in client.get(f"/stores/{store.id}/revisions/").content.decode()
    assert CommandRecord.objects.filter(store=store).count() == commands


def test_a_failed_upgrade_is_in_the_recorded_history(api, eager, cluster, new_chart):
    store = create(api, eager)
    new_chart("0.2.0")
    cluster.helm_faults({"command": "upgrade", "action": "fail", "stderr": "boom"})
    with eager():
        api.post(f"/api/stores/{store.id}/upgrade/")
    revisions = api.get(f"/api/stores/{store.id}/revisions/").json()
    assert [(r["revision"], r["status"], r["chart"]) for r in revisions] == [
        (2, "failed", "woocommerce-0.2.0"), (1, "deployed", "woocommerce-0.1.0")]
    assert revisions[0]["updated"].endswith("Z")


def test_a_failed_upgrade_can_be_retried_or_rolled_back(api, eager, cluster, new_chart):
    store = create(api, eager)
    new_chart("0.2.0")
    cluster.helm_faults({"command": "upgrade", "action": "fail", "stderr": "boom"})
    with eager():
        api.post(f"/api/stores/{store.id}/upgrade/")
    store.refresh_from_db()
    assert (store.status, store.operation) == (c.FAILED, c.OP_UPGRADE)
    with eager():
        assert api.post(f"/api/stores/{store.id}/retry/").json()["status"] == c.UPGRADING
    store.refresh_from_db()
    assert (store.status, store.chart_version) == (c.READY, "0.2.0")


def test_the_store_page_lists_revisions_and_offers_the_upgrade(client, user, api, eager,
                                                               cluster, new_chart):
    store = create(api, eager)
    new_chart("0.2.0")
    client.force_login(user)
    html = client.get(f"/stores/{store.id}/revisions/").content.decode()
    assert "Upgrade to chart 0.2.0" in html
    assert 'data-revision="1"' in html
    with eager():
        client.post(f"/stores/{store.id}/upgrade/")
    store.refresh_from_db()
    assert store.chart_version == "0.2.0"
    html = client.get(f"/stores/{store.id}/revisions/").content.decode()
    assert "Roll back to 1" in html


# -- fleet ---------------------------------------------------------------------
# The fleet waits for upgrades that run after their request commits: these
# tests commit for real (transaction=True), so eager tasks run right away.
@pytest.mark.django_db(transaction=True)
def test_a_fleet_upgrade_goes_canary_first_then_in_batches(api, eager, cluster, new_chart,
                                                           settings):
    settings.STORE_MAX_PER_USER = 10
    stores = [create(api, eager, f"Fleet {n}") for n in range(5)]
    new_chart("0.2.0")
    actor = Actor(None, via="cli")
    run = fleet.start("woocommerce", actor, batch_size=2, canary=1)
    assert run.total == 5
    batches = []
    with eager():
        while run.status == FleetUpgrade.RUNNING:
            run = fleet.advance(run, actor)
            if run.current:
                batches.append(len(run.current))
    assert batches == [1, 2, 2]
    assert run.status == FleetUpgrade.DONE
    assert sorted(run.upgraded) == sorted(s.id for s in stores)
    assert set(Store.objects.values_list("chart_version", flat=True)) == {"0.2.0"}


@pytest.mark.django_db(transaction=True)
def test_a_fleet_upgrade_stops_at_the_first_failure_and_resumes(api, eager, cluster, new_chart,
                                                                settings, capsys):
    settings.STORE_MAX_PER_USER = 10
    stores = [create(api, eager, f"Fleet {n}") for n in range(4)]
    new_chart("0.2.0")
    # The canary passes; the second store of the first batch fails.
    cluster.helm_faults({"command": "upgrade", "release": stores[2].release, "action": "fail",
                         "stderr": "UPGRADE FAILED: resource not ready, name: web"})
    with eager(), pytest.raises(CommandError, match="Stopped at the first failure"):
        call_command("upgrade_fleet", "woocommerce", "--batch-size", "2", "--poll", "0",
                     "--timeout", "60")
    out = capsys.readouterr().out
    assert "upgraded 2, skipped 0, failed 1, not started 1" in out
    assert f"{stores[2].id}: failed timed_out" in out
    assert Store.objects.get(pk=stores[3].id).chart_version == "0.1.0"  # never started

    # Fix the store, run again: only what is left is upgraded.
    with eager():
        api.post(f"/api/stores/{stores[2].id}/retry/")
        call_command("upgrade_fleet", "woocommerce", "--batch-size", "2", "--poll", "0",
                     "--timeout", "60")
    assert "2 woocommerce store(s) to move to chart 0.2.0" not in capsys.readouterr().out
    assert set(Store.objects.values_list("chart_version", flat=True)) == {"0.2.0"}


@pytest.mark.django_db(transaction=True)
def test_beat_carries_a_fleet_upgrade_on_after_its_starter_is_gone(api, eager, cluster,
                                                                   new_chart, settings):
    settings.STORE_MAX_PER_USER = 10
    stores = [create(api, eager, f"Fleet {n}") for n in range(3)]
    new_chart("0.2.0")
    run = fleet.start("woocommerce", Actor(None, via="cli"), batch_size=2)
    # Nobody calls advance() for this run: only the periodic task does.
    with eager():
        for _ in range(10):
            if fleet.advance_running() == 0:
                break
    run.refresh_from_db()
    assert run.status == FleetUpgrade.DONE
    assert sorted(run.upgraded) == sorted(s.id for s in stores)
    assert AuditEntry.objects.filter(action="fleet_upgrade", details__run=run.pk).exists()
    assert AuditEntry.objects.filter(action="upgraded", via="fleet").count() == 3


@pytest.mark.django_db(transaction=True)
def test_the_admin_starts_a_fleet_upgrade_that_beat_finishes(client, staff, api, eager,
                                                             cluster, new_chart, settings):
    settings.STORE_MAX_PER_USER = 10
    stores = [create(api, eager, f"Fleet {n}") for n in range(2)]
    new_chart("0.2.0")
    client.force_login(staff)
    # The store list's action leads to the fleet upgrade's own page...
    response = client.post("/admin/stores/store/", {
        "action": "fleet_upgrade", "_selected_action": [stores[0].id]})
    assert response["Location"] == "/admin/stores/fleetupgrade/add/?engine=woocommerce"
    # ...which says what it will do before anything starts.
    review = client.post("/admin/stores/fleetupgrade/add/", {
        "engine": "woocommerce", "batch_size": 5, "canary": 1}).content.decode()
    assert "Upgrade 2 WooCommerce stores to chart 0.2.0?" in review
    assert not FleetUpgrade.objects.exists()
    with eager():
        response = client.post("/admin/stores/fleetupgrade/add/", {
            "engine": "woocommerce", "batch_size": 5, "canary": 1, "confirmed": "yes"},
            follow=True)
        assert "Fleet upgrade of 2 woocommerce store(s) to chart 0.2.0 started" in (
            response.content.decode())
        while fleet.advance_running():
            pass
    run = FleetUpgrade.objects.get()
    assert (run.status, run.created_by) == (FleetUpgrade.DONE, staff)
    assert set(Store.objects.values_list("chart_version", flat=True)) == {"0.2.0"}


def test_a_stopped_fleet_upgrade_starts_no_more_batches(api, eager, cluster, new_chart,
                                                        settings):
    settings.STORE_MAX_PER_USER = 10
    stores = [create(api, eager, f"Fleet {n}") for n in range(3)]
    new_chart("0.2.0")
    actor = Actor(None, via="cli")
    run = fleet.start("woocommerce", actor, batch_size=2)
    assert fleet.stop(run, actor)
    assert fleet.advance_running() == 0
    run.refresh_from_db()
    assert run.status == FleetUpgrade.STOPPED
    assert [s.chart_version for s in Store.objects.filter(pk__in=[s.id for s in stores])] == [
        "0.1.0"] * 3


def test_the_fleet_dry_run_changes_nothing(api, eager, cluster, new_chart, capsys):
    store = create(api, eager)
    new_chart("0.2.0")
    call_command("upgrade_fleet", "woocommerce", "--dry-run")
    assert f"{store.id}  0.1.0 -> 0.2.0" in capsys.readouterr().out
    assert FleetUpgrade.objects.count() == 0


# -- metrics -------------------------------------------------------------------
def sample(text, name, **labels):
    """The value of the first sample of ``name`` carrying all ``labels``."""
    for line in text.splitlines():
        named = line.startswith((name + "{", name + " "))
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_add_up_after_a_provisioning_run(client, api, eager, cluster, settings):
    settings.STORE_MAX_PER_USER = 5
    before = client.get("/metrics").content.decode()
    ok = create(api, eager, "Good One")
    cluster.helm_faults({"command": "upgrade", "action": "fail", "stderr": "boom"})
    with eager():
        api.post("/api/stores/", {"name": "Bad One", "engine": "woocommerce"}, format="json")
    text = client.get("/metrics").content.decode()
    assert sample(text, "storeplatform_stores", engine="woocommerce", status="ready") == 1
    assert sample(text, "storeplatform_stores", engine="woocommerce", status="failed") == 1
    assert sample(text, "storeplatform_failures_total", operation="provision",
                  reason="helm_failed") - sample(before, "storeplatform_failures_total",
                                                 operation="provision", reason="helm_failed") == 1
    grew = (sample(text, "storeplatform_operation_duration_seconds_count",
                   operation="provision", outcome="ready")
            - sample(before, "storeplatform_operation_duration_seconds_count",
                     operation="provision", outcome="ready"))
    assert grew == 1
    # One successful and one failed helm upgrade, told apart by exit code.
    ok_runs = sample(text, "storeplatform_command_duration_seconds_count", tool="helm",
                     command="upgrade", exit_code="0") - sample(
        before, "storeplatform_command_duration_seconds_count", tool="helm", command="upgrade",
        exit_code="0")
    failed_runs = sample(text, "storeplatform_command_duration_seconds_count", tool="helm",
                         command="upgrade", exit_code="1") - sample(
        before, "storeplatform_command_duration_seconds_count", tool="helm", command="upgrade",
        exit_code="1")
    assert (ok_runs, failed_runs) == (1, 1)
    assert "storeplatform_stores_stuck" in text
    assert "storeplatform_celery_queue_depth" in text
    assert ok.status == c.READY


def test_metrics_need_the_bearer_token_when_one_is_set(client, settings):
    settings.METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me")
    assert response.status_code == 200
    assert "storeplatform_stores" in response.content.decode()
