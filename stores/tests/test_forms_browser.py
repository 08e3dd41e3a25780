"""Forms in a real browser: the create form says its limit and shows the
address a store will get; a refused create leaves the browser on the
dashboard (a reload sends nothing again); a failed sign-in keeps the name."""

import pytest

from stores import constants as c
from stores.models import Store
from stores.tests.browsing import open_page, put_store

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_create_form_shows_the_address_before_the_store_exists(chromium, live_server,
                                                                   user, other_user):
    put_store(other_user, "Acme Shop", c.READY)  # anyone's store takes the address
    page = open_page(chromium, live_server, user)
    page.goto(f"{live_server.url}/")
    page.fill("#store-name", "Corner Deli")
    page.wait_for_selector("#address-preview:has-text('http://corner-deli.localtest.me/')")
    page.fill("#store-name", "Acme Shop")
    page.wait_for_selector("#address-preview:has-text('http://acme-shop-2.localtest.me/')")
    page.click("button:has-text('Create store')")
    page.wait_for_selector("h1:has-text('Acme Shop')")
    assert Store.objects.get(owner=user).host == "acme-shop-2.localtest.me"


def test_the_name_limit_is_said_and_a_long_name_is_not_cut_silently(chromium, live_server,
                                                                      user):
    page = open_page(chromium, live_server, user)
    page.goto(f"{live_server.url}/")
    assert "3\u201340 characters" in page.locator("#name-help").inner_text()  # en dash
    too_long = "The Very Long Name Of A Shop Selling Everything"  # 47 characters
    page.fill("#store-name", too_long)
    assert page.input_value("#store-name") == too_long  # nothing cut off
    assert page.locator(".name-count.over").inner_text() == "47/40"
    page.wait_for_selector("#address-preview:has-text('at most 40 characters')")
    page.click("button:has-text('Create store')")
    page.wait_for_selector("#create-error")
    assert "at most 40 characters" in page.locator("#create-error").inner_text()
    assert page.input_value("#store-name") == too_long  # kept to be shortened
    assert Store.objects.count() == 0


def test_after_a_quota_refusal_a_reload_sends_nothing_again(chromium, live_server, user,
                                                            settings):
    settings.STORE_MAX_PER_USER = 1
    put_store(user, "Only Shop", c.READY)
    page = open_page(chromium, live_server, user)
    page.goto(f"{live_server.url}/")
    page.fill("#store-name", "Second Shop")
    page.click("button:has-text('Create store')")
    page.wait_for_selector("#create-error")
    assert "1 of your 1 allowed stores" in page.locator("#create-error").inner_text()
    assert page.url == f"{live_server.url}/"
    assert page.input_value("#store-name") == "Second Shop"
    posts = []
    page.on("request", lambda request: posts.append(request) if request.method == "POST"
            else None)
    page.reload()
    assert posts == []
    assert page.locator("#create-error").count() == 0  # said once
    assert Store.objects.filter(owner=user).count() == 1


def test_a_failed_sign_in_keeps_the_user_name(chromium, live_server, user):
    page = open_page(chromium, live_server)
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "not-her-password")
    page.click("button[type=submit]")
    page.wait_for_selector("text=didn't match")
    assert page.input_value("input[name=username]") == "alice"
    assert page.evaluate("document.activeElement.name") == "password"
    page.fill("input[name=password]", "alice-password-1")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Create a store")
