"""The admin for operators, in a real browser: status badges in the store
list, a store page that leads with status, reason, timeline and the
operations the state allows, fleet upgrades started from their own page
with a confirmation, followed live and stopped, no Save buttons on records
nobody edits."""

import pytest

from stores import constants as c
from stores import fleet
from stores.models import AuditEntry, CommandRecord, FleetUpgrade, Orphan, StoreEvent
from stores.tests.browsing import colours, contrast, open_page, put_store

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_store_list_shows_status_badges(chromium, live_server, staff, user):
    for status in (c.READY, c.FAILED, c.PROVISIONING, c.DELETED):
        put_store(user, f"Shop {status}", status)
    page = open_page(chromium, live_server, staff)
    page.goto(f"{live_server.url}/admin/stores/store/")
    badges = page.locator("#result_list .badge")
    assert badges.count() == 4
    for n in range(4):
        fg, bg = colours(badges.nth(n))
        assert bg[3] == 1 and contrast(fg, bg) >= 4.5
    assert page.locator("#result_list .badge[data-status=failed]").inner_text() == "Failed"


def test_the_store_page_leads_with_status_reason_timeline_and_actions(chromium, live_server,
                                                                      staff, user):
    store = put_store(user, "Broken Shop", c.FAILED, status_reason=c.REASON_CLUSTER_FORBIDDEN,
                      operation=c.OP_PROVISION, status_message="The Kubernetes API said: "
                      "namespaces is forbidden", diagnostics={"http_status": 403, "raw": "{}"})
    for n in range(60):
        StoreEvent.objects.create(store=store, kind=c.EVENT_INFO, message=f"Event {n}.")
        CommandRecord.objects.create(store=store, tool="kube", argv=["create", "namespace"],
                                     exit_code=1, stderr="forbidden")
    page = open_page(chromium, live_server, staff)
    page.goto(f"{live_server.url}/admin/stores/store/{store.id}/change/")
    summary = page.locator("#store-summary")
    assert summary.bounding_box()["y"] < 250  # first thing on the page
    text = summary.inner_text()
    assert "The cluster does not allow the platform to do this (HTTP 403)" in text
    assert "namespaces is forbidden" in text
    assert summary.locator(".badge[data-status=failed]").count() == 1
    assert "Event 59." in summary.locator(".summary-timeline").inner_text()
    # Everything else is folded away: the page stays short.
    assert page.evaluate("document.documentElement.scrollHeight") < 2500
    assert page.locator("input[name=_save], input[name=_continue]").count() == 0

    page.click("button:has-text('Retry the provision')")
    page.wait_for_selector("text=Retry requested.")
    store.refresh_from_db()
    assert store.status == c.REQUESTED
    assert AuditEntry.objects.filter(action="retried", store_id=store.id, via="admin").exists()
    page.click("a:has-text('Delete store')")
    page.wait_for_selector("text=gone for good")
    page.click("input[type=submit][value^='Yes, delete']")
    page.wait_for_selector("text=Deletion requested.")
    store.refresh_from_db()
    assert store.status == c.DELETING


def test_a_fleet_upgrade_is_started_confirmed_followed_and_stopped(chromium, live_server,
                                                                   staff, user, settings):
    settings.STORE_MAX_PER_USER = 10
    # charts/woocommerce ships 0.1.0; these run 0.0.9.
    shops = [put_store(user, f"Fleet {n}", c.READY, chart_version="0.0.9", helm_revision=1)
             for n in range(3)]
    page = open_page(chromium, live_server, staff)
    page.goto(f"{live_server.url}/admin/stores/fleetupgrade/")
    page.click("text=Start a fleet upgrade")
    page.select_option("#fleet-engine", "woocommerce")
    assert "3 stores not on chart 0.1.0" in page.locator("#fleet-engine").inner_text()
    page.fill("#fleet-batch", "2")
    page.click("input[value=Review]")
    assert page.locator("#review-heading").inner_text() == (
        "Upgrade 3 WooCommerce stores to chart 0.1.0?")
    assert "then batches of 2" in page.locator("#content-main").inner_text()
    assert not FleetUpgrade.objects.exists()  # nothing started before the confirmation

    page.click("input[value='Start the fleet upgrade']")
    page.wait_for_selector("#fleet-progress")
    run = FleetUpgrade.objects.get()
    assert (run.total, run.batch_size, run.created_by) == (3, 2, staff)
    assert "0 of 3 done" in page.locator("#fleet-progress").inner_text()

    fleet.advance_running()  # what beat does every reconcile period: the canary goes
    page.wait_for_selector(f"#fleet-progress a:has-text('{shops[0].id}')")
    assert "1 in flight" in page.locator("#fleet-progress").inner_text()

    page.click("#fleet-stop")
    page.wait_for_selector("#fleet-progress .badge[data-status=stopped]")
    run.refresh_from_db()
    assert run.status == FleetUpgrade.STOPPED
    assert fleet.advance_running() == 0


def test_records_nobody_edits_have_no_save_buttons(chromium, live_server, staff, user):
    store = put_store(user, "Shop", c.READY)
    command = CommandRecord.objects.create(store=store, tool="helm", argv=["helm", "list"])
    orphan = Orphan.objects.create(namespace="store-gone", why="no such store")
    entry = AuditEntry.objects.create(actor_name="ops", action="create", store_id=store.id)
    run = FleetUpgrade.objects.create(engine="woocommerce", target_version="0.1.0")
    page = open_page(chromium, live_server, staff)
    for url in (f"store/{store.id}", f"commandrecord/{command.pk}", f"orphan/{orphan.pk}",
                f"auditentry/{entry.pk}", f"fleetupgrade/{run.pk}"):
        page.goto(f"{live_server.url}/admin/stores/{url}/change/")
        assert page.locator("#content-main").count() == 1, url
        assert page.locator("input[name=_save], input[name=_continue], "
                            "input[name=_addanother]").count() == 0, url
