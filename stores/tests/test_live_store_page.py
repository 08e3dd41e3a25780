"""The store page in a real browser keeps up by itself: the Versions card
after an upgrade or rollback and when the store first becomes ready, the
"your store is ready" moment, no stale "on its way" above a failure, and
focus where it was. Stores are moved on with ``stores.transitions`` and
revisions recorded as a worker records them."""

import pytest

from stores import constants as c
from stores.models import Revision, Store
from stores.tests.browsing import open_page, put_revision, put_store
from stores.transitions import request_operation, transition

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The chart the platform ships (charts/woocommerce) is 0.1.0; these stores
# run an older one, so an upgrade is on offer.
OLD, CURRENT = "0.0.9", "0.1.0"


def ready_store(user, name="Acme Shop"):
    store = put_store(user, name, c.READY, chart_version=OLD, helm_revision=1)
    put_revision(store, 1, "deployed", OLD)
    return store


def deadline():
    from provisioning.tasks import deadline_for

    return deadline_for(c.OP_UPGRADE)


def test_the_versions_card_follows_an_upgrade_and_a_rollback_without_a_reload(
    chromium, live_server, user
):
    store = ready_store(user)
    page = open_page(chromium, live_server, user)
    page.goto(f"{live_server.url}/stores/{store.id}/")
    page.evaluate("window.sameLoad = true")
    versions = page.locator("#versions")
    assert "Upgrade to chart 0.1.0" in versions.inner_text()

    # The owner asked for an upgrade: the card must not offer changes now.
    request_operation(store.id, c.OP_UPGRADE, expect={c.READY}, actor="web:alice",
                      message="Upgrade to chart 0.1.0 requested.", deadline=deadline())
    page.wait_for_selector("#store-header .badge[data-status=upgrading]")
    page.wait_for_function("() => !document.querySelector('#versions a.upgrade-link')")
    assert "upgrading" in versions.inner_text().lower()

    # The worker recorded the new history and finished.
    Revision.objects.filter(store=store, number=1).update(status="superseded")
    put_revision(store, 2, "deployed", CURRENT)
    transition(store.id, c.READY, message="The upgrade is done.", chart_version=CURRENT,
               helm_revision=2)
    page.wait_for_selector("#versions tr[data-revision='2'].current-revision")
    text = versions.inner_text()
    assert "0.1.0, the platform's current version" in text
    assert "Upgrade to chart" not in text
    assert page.locator("#versions a.rollback-link[data-revision='1']").count() == 1
    assert page.locator("#versions a.rollback-link[data-revision='2']").count() == 0

    # And back: a rollback to revision 1 makes revision 3.
    request_operation(store.id, c.OP_ROLLBACK, expect={c.READY}, actor="web:alice",
                      message="Rollback to revision 1 requested.", deadline=deadline(),
                      target_revision=1)
    Revision.objects.filter(store=store, number=2).update(status="superseded")
    put_revision(store, 3, "deployed", OLD, description="Rollback to 1")
    transition(store.id, c.READY, message="The rollback is done.", chart_version=OLD,
               helm_revision=3)
    page.wait_for_selector("#versions tr[data-revision='3'].current-revision")
    assert "Upgrade to chart 0.1.0" in versions.inner_text()
    assert page.evaluate("window.sameLoad") is True


def test_a_store_that_becomes_ready_shows_its_versions_and_how_to_open_it(
    chromium, live_server, user
):
    store = put_store(user, "Fresh Shop", c.PROVISIONING, current_step="Installing chart")
    page = open_page(chromium, live_server, user)
    page.goto(f"{live_server.url}/stores/{store.id}/")
    assert not page.locator("#versions").is_visible()
    assert page.locator("#ready-callout").count() == 0

    put_revision(store, 1, "deployed", CURRENT)
    transition(store.id, c.READY, message="The store is ready.", chart_version=CURRENT,
               helm_revision=1, ready_at=store.created_at)
    page.wait_for_selector("#versions tr[data-revision='1']")
    callout = page.locator("#ready-callout")
    assert callout.is_visible()
    assert "Your store is ready" in callout.inner_text()
    assert callout.locator("a[href='http://fresh-shop.localtest.me/']").count() == 1
    assert callout.locator("a[href='http://fresh-shop.localtest.me/wp-admin/']").count() == 1
    assert "Fresh Shop: Ready" in page.locator("#announcer").text_content()


def test_the_on_its_way_message_goes_when_the_store_fails(chromium, live_server, user, cluster):
    page = open_page(chromium, live_server, user)
    page.goto(f"{live_server.url}/")
    page.fill("#store-name", "Doomed Shop")
    page.click("button:has-text('Create store')")
    page.wait_for_selector("text=Doomed Shop is on its way.")
    store = Store.objects.get(name="Doomed Shop")
    Store.objects.filter(pk=store.id).update(status=c.PROVISIONING)
    transition(store.id, c.FAILED, reason=c.REASON_TIMED_OUT, message="resource not ready")
    page.wait_for_selector("#store-header .badge[data-status=failed]")
    assert page.get_by_text("is on its way").count() == 0


def test_focus_stays_on_the_button_it_was_on_when_the_header_updates(
    chromium, live_server, user
):
    store = put_store(user, "Busy Shop", c.PROVISIONING, current_step="Preparing namespace")
    page = open_page(chromium, live_server, user)
    page.goto(f"{live_server.url}/stores/{store.id}/")
    page.locator("#delete-link").focus()
    Store.objects.filter(pk=store.id).update(current_step="Installing chart")
    from stores.transitions import set_step

    set_step(store.id, "Installing chart")
    page.wait_for_selector("#store-header :text('Installing chart')")
    page.wait_for_timeout(200)
    assert page.evaluate("document.activeElement.id") == "delete-link"


def test_an_upgrade_asks_first_and_says_what_will_happen(chromium, live_server, user):
    store = ready_store(user)
    page = open_page(chromium, live_server, user)
    page.goto(f"{live_server.url}/stores/{store.id}/")
    page.click("#versions a.upgrade-link")
    text = page.locator("main").inner_text()
    assert "from chart 0.0.9 (revision 1) to chart 0.1.0" in text
    assert Store.objects.get(pk=store.id).status == c.READY  # nothing happened yet
    page.click("button:has-text('Upgrade to chart 0.1.0')")
    page.wait_for_selector("#store-header .badge[data-status=upgrading]")
    assert Store.objects.get(pk=store.id).status == c.UPGRADING


def test_a_rollback_asks_first_and_says_what_will_happen(chromium, live_server, user):
    store = put_store(user, "Acme Shop", c.READY, chart_version=CURRENT, helm_revision=2)
    put_revision(store, 1, "superseded", OLD)
    put_revision(store, 2, "deployed", CURRENT)
    page = open_page(chromium, live_server, user)
    page.goto(f"{live_server.url}/stores/{store.id}/")
    page.click("#versions a.rollback-link[data-revision='1']")
    text = page.locator("main").inner_text()
    assert "revision 1 (chart 0.0.9)" in text and "chart 0.1.0 (revision 2)" in text
    assert "orders" in text  # what stays: the shop's data
    page.click("button:has-text('Roll back to revision 1')")
    page.wait_for_selector("#store-header .badge[data-status=rolling_back]")
    store.refresh_from_db()
    assert (store.status, store.target_revision) == (c.ROLLING_BACK, 1)
