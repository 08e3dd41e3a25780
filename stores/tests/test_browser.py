"""A person in a real browser: sign in, create a store, watch it become
ready without reloading, delete it."""

import pytest

from stores import constants as c
from stores.models import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_store_owner_creates_watches_and_deletes_a_store(chromium, live_server, user, worker,
                                                           cluster):
    page = chromium.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{live_server.url}/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-password-1")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Create a store")

    page.fill("input[name=name]", "Browser Shop")
    page.select_option("select[name=engine]", "woocommerce")
    page.click("text=Create store")
    page.wait_for_selector("h1:has-text('Browser Shop')")
    # Mark this page load: if the page reloaded, the marker would be gone.
    page.evaluate("window.__sameLoad = true")

    page.wait_for_selector("#store-header [data-status=ready]", timeout=90_000)
    # Without a reload: the ready moment, the versions the worker recorded.
    page.wait_for_selector("#ready-callout")
    page.wait_for_selector("#versions tr[data-revision='1'].current-revision")
    assert page.evaluate("window.__sameLoad") is True
    assert page.locator("#timeline").inner_text().count("✓") >= 4
    assert page.locator("#ready-callout a[href='http://browser-shop.localtest.me/']").count() == 1
    assert "is on its way" not in page.locator("main").inner_text()

    page.click("text=Delete store")
    page.wait_for_selector("text=cannot be undone")
    page.click("button:has-text('Yes, delete')")
    page.evaluate("window.__sameLoad = true")
    page.wait_for_selector("#store-header [data-status=deleted]", timeout=90_000)
    assert page.evaluate("window.__sameLoad") is True
    assert Store.objects.get(name="Browser Shop").status == c.DELETED
    assert cluster.managed_namespaces() == []


def test_an_owner_adds_a_domain_copies_its_records_and_watches_it_verify(
        chromium, live_server, user, fake_dns):
    """The Domains card: add, the records with copy buttons, live status."""
    from stores.models import Domain

    store = Store.objects.create(owner=user, name="Card Shop", slug="card-shop",
                                 host="card-shop.localtest.me", engine="woocommerce",
                                 status=c.UPGRADING)  # busy: verifying changes only the row
    context = chromium.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{live_server.url}/stores/{store.id}/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-password-1")
    page.click("button[type=submit]")
    page.fill("#domains-card input[name=hostname]", "shop.example.com")
    page.click("text=Add domain")
    page.wait_for_selector("[data-hostname='shop.example.com'][data-status=pending_verification]")
    domain = Domain.objects.get()
    page.click(f"button.copy[data-copy='{domain.verification_token}']")
    page.wait_for_selector("button.copy:has-text('Copied'), button.copy:has-text('Select')")
    copied = page.evaluate("navigator.clipboard.readText().catch(() => '')")
    assert copied in ("", domain.verification_token)

    # The owner creates the records; the periodic check verifies it, and the
    # card (polling while the domain is pending) shows it without a reload.
    fake_dns.set("_storeplatform-challenge.shop.example.com", "TXT", domain.verification_token)
    fake_dns.set("shop.example.com", "CNAME", store.host)
    page.evaluate("window.__sameLoad = true")
    from stores import domains
    domains.check_domains()
    page.wait_for_selector("[data-hostname='shop.example.com'][data-status=verified]")
    assert page.evaluate("window.__sameLoad") is True
    context.close()
