"""Every page works under the Content-Security-Policy, in a real Chromium.

The policy (storeplatform/settings.py) refuses inline scripts, eval and inline
<style> elements. Chromium reports each refusal as a `securitypolicyviolation`
event, collected here from the first moment of every page, and htmx must
still do its work: the dashboard's and the store page's pollers, and the
store page's lazily loaded release history.
"""

import pytest
from playwright.sync_api import expect

from stores import constants as c
from stores.models import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.effectiveDirective} refused ${event.blockedURI}`
                              + ` at ${event.sourceFile}:${event.lineNumber}`);
});
"""


def violations(page) -> list[str]:
    return page.evaluate("window.__cspViolations")


def test_every_page_works_under_the_content_security_policy(chromium, live_server, staff,
                                                            cluster):
    store = Store.objects.create(owner=staff, name="Policy Shop", slug="policy-shop",
                                 host="policy-shop.localtest.me", engine="woocommerce",
                                 status=c.READY, helm_revision=1)
    context = chromium.new_context()
    context.add_init_script(COLLECT_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(30_000)
    refused_in_console = []
    page.on("console", lambda msg: "Content Security Policy" in msg.text
            and refused_in_console.append(msg.text))

    page.goto(f"{live_server.url}/login/")
    assert "script-src 'self'" in page.evaluate(
        "fetch(location.href).then(r => r.headers.get('content-security-policy'))")
    page.fill("input[name=username]", "ops")
    page.fill("input[name=password]", "ops-password-1")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Create a store")
    # htmx runs: the dashboard's poller asks for changes every 2 s.
    with page.expect_response(lambda r: "/stores/changes/" in r.url, timeout=10_000):
        pass
    assert violations(page) == []
    assert page.locator("head style").count() == 0  # htmx injected no indicator <style>

    page.goto(f"{live_server.url}/stores/{store.id}/")
    # htmx's hx-trigger="load" replaced the Domains card's placeholder.
    # (Not wait_for_function: Playwright evals its string, which the policy refuses.)
    expect(page.locator("#domains")).not_to_contain_text("Loading the domains")
    assert violations(page) == []

    for path, ready in [
        ("/admin/", "#site-name"),
        ("/admin/stores/store/", "#result_list"),
        (f"/admin/stores/store/{store.id}/change/", "#store_form"),
        ("/api/stores/", "text=Policy Shop"),
        # DRF's "Extra Actions" menu has an inline style attribute (allowed).
        (f"/api/stores/{store.id}/", "#extra-actions-menu"),
        ("/api/docs/", ".swagger-ui .opblock"),
    ]:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_selector(ready)
        assert violations(page) == [], path

    assert refused_in_console == []
    context.close()
