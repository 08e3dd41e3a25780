"""The site around the pages, in a real browser: error pages that lead
somewhere, a favicon, and every main page usable on a phone (390 px) and
with long names on a desktop, without sideways scrolling."""

import pytest

from stores import constants as c
from stores.models import StoreCredentials, credentials_fernet
from stores.tests.browsing import PHONE, horizontal_overflow, open_page, put_revision, put_store

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_NAME = "Supercalifragilisticexpialidociousshopxy"  # 40 characters, one word


def test_a_missing_page_has_the_sites_navigation(chromium, live_server, user):
    page = open_page(chromium, live_server, user)
    response = page.goto(f"{live_server.url}/stores/nosuchstore/")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Page not found"
    assert page.locator("main a[href='/']").count() == 1
    assert page.locator("header nav a:has-text('Stores')").count() == 1


def test_a_server_error_page_has_the_sites_navigation(chromium, live_server, user):
    store = put_store(user, "Locked Shop", c.READY)
    # A damaged row: it decrypts, but is not the JSON it should be. An error
    # we do not handle (an unreadable key is handled: 409), so the platform's
    # 500 page it is.
    StoreCredentials.objects.create(
        store=store, encrypted=credentials_fernet().encrypt(b"not json").decode())
    page = open_page(chromium, live_server, user)
    response = page.goto(f"{live_server.url}/stores/{store.id}/credentials/")
    assert response.status == 500
    assert page.locator("h1").inner_text() == "Something went wrong"
    assert page.locator("main a[href='/']").count() == 1
    assert page.locator("link[rel=stylesheet]").count() >= 1


def test_pages_have_a_favicon(chromium, live_server, user):
    page = open_page(chromium, live_server, user)
    page.goto(f"{live_server.url}/")
    href = page.locator("link[rel=icon]").get_attribute("href")
    icon = page.request.get(f"{live_server.url}{href}")
    assert (icon.status, icon.headers["content-type"]) == (200, "image/svg+xml")
    # Browsers ask for /favicon.ico on pages without a link (the admin, API docs).
    legacy = page.request.get(f"{live_server.url}/favicon.ico")
    assert legacy.status == 200 and legacy.headers["content-type"] == "image/svg+xml"


def test_long_names_wrap_on_a_desktop(chromium, live_server, user):
    store = put_store(user, LONG_NAME, c.READY, chart_version="0.1.0", helm_revision=1)
    page = open_page(chromium, live_server, user)
    for url in ("/", f"/stores/{store.id}/", f"/stores/{store.id}/delete/"):
        page.goto(f"{live_server.url}{url}")
        assert horizontal_overflow(page) == 0, url


def test_every_main_page_fits_a_phone(chromium, live_server, user, settings):
    settings.STORE_MAX_PER_USER = 20
    ready = put_store(user, LONG_NAME, c.READY, chart_version="0.0.9", helm_revision=2)
    put_revision(ready, 1, "superseded", "0.0.8")
    put_revision(ready, 2, "deployed", "0.0.9")
    failed = put_store(user, "Broken Shop", c.FAILED, status_reason=c.REASON_TIMED_OUT,
                       status_message="resource not ready, name: web, kind: Deployment",
                       diagnostics={"helm_stderr": "Error: " + "x" * 500, "cluster": {
                           "pods": [{"name": "broken-shop-wordpress-7c9d8f6b5-abcde",
                                     "phase": "Pending", "containers": [
                                         {"container": "wordpress", "ready": False,
                                          "state": "ImagePullBackOff", "restarts": 0,
                                          "detail": "Back-off pulling image wordpress:6.8"}]}],
                           "events": []}})
    for status in (c.REQUESTED, c.PROVISIONING, c.UPGRADING, c.ROLLING_BACK, c.DELETING,
                   c.DEGRADED):
        put_store(user, f"Shop {status}", status, current_step="Installing chart")
    page = open_page(chromium, live_server, user, width=PHONE)
    urls = ["/", f"/stores/{ready.id}/", f"/stores/{failed.id}/",
            f"/stores/{ready.id}/delete/", f"/stores/{ready.id}/upgrade/",
            f"/stores/{ready.id}/rollback/?revision=1", "/stores/nosuchstore/"]
    for url in urls:
        page.goto(f"{live_server.url}{url}")
        assert horizontal_overflow(page) == 0, url
    page.goto(f"{live_server.url}/stores/{failed.id}/")
    page.click("#failure-details summary")
    assert horizontal_overflow(page) == 0
    anonymous = open_page(chromium, live_server, width=PHONE)
    anonymous.goto(f"{live_server.url}/login/")
    assert horizontal_overflow(anonymous) == 0
