"""The dashboard in a real browser stays intact while it updates itself:
rows change in place, new stores arrive as rows, status changes are
announced, and keyboard focus stays where it was."""

import pytest

from stores import constants as c
from stores import services
from stores.tests.browsing import open_page, put_store
from stores.transitions import transition

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROW_SHAPE_JS = """() => [...document.querySelectorAll('#store-table > tbody')]
    .flatMap(body => [...body.childNodes])
    .filter(n => n.nodeType === 1 || n.textContent.trim())
    .map(n => n.nodeType === 1 ? n.tagName + '.' + n.className : 'TEXT:' + n.textContent.trim())"""


def test_a_store_that_changes_state_is_updated_in_its_own_row(chromium, live_server, user):
    busy = put_store(user, "Busy Shop", c.PROVISIONING, current_step="Installing chart")
    put_store(user, "Quiet Shop", c.READY)
    page = open_page(chromium, live_server, user)
    page.goto(f"{live_server.url}/")
    page.evaluate("window.sameLoad = true")
    assert page.locator(f"#store-{busy.id} [data-status=provisioning]").count() == 1

    transition(busy.id, c.READY, message="The store is ready.")
    page.wait_for_selector(f"#store-{busy.id} .badge[data-status=ready]")
    assert page.evaluate("window.sameLoad") is True
    assert page.evaluate(ROW_SHAPE_JS) == ["TR.store-row", "TR.store-row"]
    # The row kept its cells: the storefront is a link now, in the row.
    assert page.locator(f"#store-{busy.id} a[href='http://busy-shop.localtest.me/']").count() == 1
    assert "Busy Shop" not in page.locator("#store-table").evaluate(
        "t => [...t.parentElement.childNodes].filter(n => n.nodeType === 3)"
        ".map(n => n.textContent).join('')")


def test_a_store_created_elsewhere_appears_as_the_first_row(chromium, live_server, user):
    put_store(user, "Older Shop", c.READY)
    page = open_page(chromium, live_server, user)
    page.goto(f"{live_server.url}/")
    newer = services.create_store(services.Actor(user, via="api"), "Newer Shop", "woocommerce")
    page.wait_for_selector(f"#store-{newer.id}")
    assert page.evaluate(ROW_SHAPE_JS) == ["TR.store-row", "TR.store-row"]
    first = page.locator("#store-table tbody tr").first
    assert first.get_attribute("id") == f"store-{newer.id}"
    assert first.locator("td").count() == page.locator("#store-table thead th").count()


def test_the_first_store_replaces_the_empty_message(chromium, live_server, user):
    page = open_page(chromium, live_server, user)
    page.goto(f"{live_server.url}/")
    assert page.get_by_text("No stores yet").is_visible()
    store = services.create_store(services.Actor(user, via="api"), "First Shop", "woocommerce")
    page.wait_for_selector(f"#store-{store.id}")
    assert not page.get_by_text("No stores yet").is_visible()


def test_status_changes_are_announced_in_a_live_region(chromium, live_server, user):
    busy = put_store(user, "Busy Shop", c.PROVISIONING)
    page = open_page(chromium, live_server, user)
    page.goto(f"{live_server.url}/")
    region = page.locator("[aria-live=polite][role=status]#announcer")
    assert region.count() == 1
    transition(busy.id, c.FAILED, reason=c.REASON_TIMED_OUT, message="resource not ready")
    page.wait_for_function(
        "() => document.querySelector('#announcer').textContent.includes('Busy Shop')")
    said = region.text_content()
    assert "Failed" in said and "Timed out" in said


def test_keyboard_focus_stays_on_its_row_after_a_live_update(chromium, live_server, user):
    busy = put_store(user, "Busy Shop", c.PROVISIONING)
    page = open_page(chromium, live_server, user)
    page.goto(f"{live_server.url}/")
    link = page.locator(f"#store-{busy.id} a.store-link")
    link.focus()
    focused_id = page.evaluate("document.activeElement.id")
    assert focused_id
    transition(busy.id, c.READY, message="The store is ready.")
    page.wait_for_selector(f"#store-{busy.id} .badge[data-status=ready]")
    page.wait_for_timeout(200)  # settle
    assert page.evaluate("document.activeElement.id") == focused_id
