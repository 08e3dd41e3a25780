"""The store page in a real browser: a failure a person can read, times in
the viewer's time zone, copy buttons, the admin login shown and hidden."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from stores import constants as c
from stores import services
from stores.models import Store, StoreEvent
from stores.tests.browsing import open_page, put_store

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_refusal_of_the_cluster_reads_as_a_title_a_sentence_a_next_step_and_details_once(
    chromium, live_server, user, cluster, eager
):
    message = ('Namespace "store-x" is invalid: metadata.labels: Invalid value: '
               '"storeplatform": must be no more than 63 characters')
    cluster.fake.faults["refuse"] = [{"method": "POST", "path": "/api/v1/namespaces",
                                      "code": 400, "reason": "BadRequest", "message": message}]
    with eager():
        store = services.create_store(services.Actor(user), "Broken Shop", "woocommerce")
    store.refresh_from_db()
    assert store.status == c.FAILED

    page = open_page(chromium, live_server, user)
    page.goto(f"{live_server.url}/stores/{store.id}/")
    failure = page.locator("#failure")
    assert failure.locator("h2").inner_text() == (
        "The Kubernetes API refused the request (HTTP 400)")
    assert failure.locator(".failure-sentence").inner_text() == (
        f"The Kubernetes API said: {message}")
    assert "What to do next:" in failure.locator(".failure-next").inner_text()
    details = failure.locator("details#failure-details")
    assert details.get_attribute("open") is None  # folded away
    assert details.locator("summary").inner_text() == "Details"
    raw = '"reason": "BadRequest"'
    assert raw in details.locator("pre").text_content()
    # The cluster's raw answer once on the whole page, never in the timeline.
    assert page.evaluate("document.body.textContent").count(raw) == 1
    timeline = page.locator("#timeline").inner_text()
    assert raw not in timeline
    assert "Provisioning → Failed — The Kubernetes API refused the request (HTTP 400)" in timeline
    assert "Internal error" not in page.locator("main").inner_text()


def test_times_are_shown_in_the_viewers_time_zone(chromium, live_server, user):
    tokyo = ZoneInfo("Asia/Tokyo")
    # Tokyo is UTC+9 all year: 03:04 UTC is 12:04 there, the same day.
    created = (timezone.now() - timedelta(days=20)).replace(hour=3, minute=4, second=5,
                                                            microsecond=0)
    store = put_store(user, "Tokyo Shop", c.FAILED, created_at=created)
    yesterday = StoreEvent.objects.create(store=store, kind=c.EVENT_INFO, message="Yesterday.",
                                          created_at=timezone.now() - timedelta(days=1))
    recent = StoreEvent.objects.create(store=store, kind=c.EVENT_INFO, message="Just now.")
    page = open_page(chromium, live_server, user, tz="Asia/Tokyo")
    page.goto(f"{live_server.url}/stores/{store.id}/")

    created_time = page.locator("#store-header dd time").first
    assert created_time.get_attribute("datetime") == created.isoformat()
    local = created.astimezone(tokyo)
    assert f"{local:%b} {local.day}, {local.year}, 12:04" in created_time.inner_text()
    assert "Asia/Tokyo" in created_time.get_attribute("title")
    assert page.locator(".time-zone").inner_text() == "Asia/Tokyo"

    # The timeline: the time of day, with the date in front when it is not today.
    def shown(event):
        return page.locator(f"#event-{event.id} time").inner_text()

    assert shown(recent) == f"{recent.created_at.astimezone(tokyo):%H:%M:%S}"
    then = yesterday.created_at.astimezone(tokyo)
    assert shown(yesterday) == f"{then:%b} {then.day}, {then:%H:%M:%S}"

    # The dashboard: how long ago, or the day once it is over a week.
    fresh = put_store(user, "Fresh Shop", c.READY,
                      created_at=timezone.now() - timedelta(minutes=3))
    page.goto(f"{live_server.url}/")
    assert page.locator(f"#store-{fresh.id} time").inner_text() == "3 min ago"
    day = f"{local:%b} {local.day}"
    if local.year != timezone.now().astimezone(tokyo).year:
        day += f", {local.year}"
    assert page.locator(f"#store-{store.id} time").inner_text() == day


def test_addresses_and_the_admin_login_can_be_copied_and_the_password_hidden_again(
    chromium, live_server, user
):
    store = put_store(user, "Copy Shop", c.READY)
    from stores.models import StoreCredentials

    StoreCredentials.objects.create(store=store, encrypted=StoreCredentials.encrypt({
        "admin-username": "shopadmin", "admin-password": "s3cret-Pa55", "admin-email": "a@b.c",
    }))
    page = open_page(chromium, live_server, user)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"],
                                   origin=live_server.url)
    page.goto(f"{live_server.url}/stores/{store.id}/")

    def clipboard():
        return page.evaluate("navigator.clipboard.readText()")

    page.click("#copy-storefront")
    assert clipboard() == "http://copy-shop.localtest.me/"
    page.wait_for_function("document.querySelector('#announcer').textContent.includes('copied')")
    page.click("#copy-admin")
    assert clipboard() == "http://copy-shop.localtest.me/wp-admin/"

    page.click("#show-login")
    page.wait_for_selector("#admin-user")
    assert page.locator("#admin-user").inner_text() == "shopadmin"
    assert "s3cret-Pa55" not in page.locator("#credentials").inner_text()  # not on screen
    page.click("#copy-user")
    assert clipboard() == "shopadmin"
    page.click("#copy-password")
    assert clipboard() == "s3cret-Pa55"
    page.click("#reveal-password")
    assert page.locator("#admin-password").inner_text() == "s3cret-Pa55"
    assert page.locator("#reveal-password").get_attribute("aria-pressed") == "true"
    page.click("#reveal-password")
    assert "s3cret-Pa55" not in page.locator("#credentials").inner_text()

    page.click("#hide-login")
    assert page.locator("#credentials").inner_text() == ""
    assert not page.locator("#credentials").is_visible()
    assert page.evaluate("document.activeElement.id") == "show-login"
    assert Store.objects.get(pk=store.id).status == c.READY
