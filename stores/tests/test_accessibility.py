"""Accessibility, checked in a real browser: axe-core (from npm, pinned in
stores/tests/axe/package-lock.json) finds no serious or critical violation
on the main pages, every badge and warning has a contrast of at least 4.5:1
(computed from the colours the browser applies), and each group of states
has a badge colour of its own."""

import pytest
from django.utils import timezone

from stores import constants as c
from stores.models import StoreCredentials, StoreEvent
from stores.tests.browsing import (
    PHONE,
    axe_violations,
    colours,
    contrast,
    open_page,
    put_revision,
    put_store,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Which states share a colour: one group, one colour.
STATE_GROUPS = {
    c.REQUESTED: "waiting",
    c.PROVISIONING: "building",
    c.UPGRADING: "changing",
    c.ROLLING_BACK: "changing",
    c.DELETING: "removing",
    c.READY: "running",
    c.DEGRADED: "attention",
    c.FAILED: "failed",
    c.DELETED: "gone",
}


@pytest.fixture
def stores_in_every_state(user, settings):
    settings.STORE_MAX_PER_USER = 20
    made = {}
    for status in STATE_GROUPS:
        made[status] = put_store(user, f"Shop {status.replace('_', ' ')}", status,
                                 current_step="Installing chart" if status in c.BUSY_STATES
                                 else "", chart_version="0.0.9", helm_revision=2)
    ready = made[c.READY]
    ready.ready_at = timezone.now()
    ready.save()
    put_revision(ready, 1, "superseded", "0.0.8")
    put_revision(ready, 2, "deployed", "0.0.9")
    StoreCredentials.objects.create(store=ready, encrypted=StoreCredentials.encrypt(
        {"admin-username": "shopadmin", "admin-password": "pw", "admin-email": "a@b.c"}))
    failed = made[c.FAILED]
    failed.status_reason = c.REASON_CLUSTER_REJECTED
    failed.status_message = 'The Kubernetes API said: Namespace "x" is invalid'
    failed.diagnostics = {"http_status": 400, "raw": '{"kind": "Status", "code": 400}'}
    failed.save()
    StoreEvent.objects.create(store=failed, kind=c.EVENT_WARNING,
                              message="Preparing namespace stopped: the API said no.")
    degraded = made[c.DEGRADED]
    degraded.status_reason = c.REASON_PODS_NOT_READY
    degraded.status_message = "web-1 (CrashLoopBackOff)"
    degraded.save()
    return made


def test_the_main_pages_have_no_serious_accessibility_violations(
    chromium, live_server, user, stores_in_every_state, axe_script
):
    ready, failed = stores_in_every_state[c.READY], stores_in_every_state[c.FAILED]
    found = {}
    anonymous = open_page(chromium, live_server)
    anonymous.goto(f"{live_server.url}/login/")
    found["login"] = axe_violations(anonymous, axe_script)

    pages = {
        "dashboard": "/",
        "store page (ready)": f"/stores/{ready.id}/",
        "store page (failed)": f"/stores/{failed.id}/",
        "delete confirmation": f"/stores/{ready.id}/delete/",
        "upgrade confirmation": f"/stores/{ready.id}/upgrade/",
        "rollback confirmation": f"/stores/{ready.id}/rollback/?revision=1",
        "404": "/stores/nosuchstore/",
    }
    for width in (1280, PHONE):
        page = open_page(chromium, live_server, user, width=width)
        for name, url in pages.items():
            page.goto(f"{live_server.url}{url}")
            if name == "store page (ready)":
                page.click("#show-login")
                page.wait_for_selector("#admin-user")
            if name == "store page (failed)":
                page.click("#failure-details summary")
            found[f"{name} at {width}px"] = axe_violations(page, axe_script)
        # The tokens page, once there is one (it belongs to the accounts work).
        if page.goto(f"{live_server.url}/accounts/tokens/").status == 200:
            found[f"tokens at {width}px"] = axe_violations(page, axe_script)
    assert {name: v for name, v in found.items() if v} == {}


def test_every_badge_and_warning_has_a_contrast_of_at_least_4_5(
    chromium, live_server, user, stores_in_every_state
):
    page = open_page(chromium, live_server, user)
    ratios = {}

    def measure(label, locator):
        for n in range(locator.count()):
            fg, bg = colours(locator.nth(n))
            ratios[f"{label} #{n}"] = round(contrast(fg, bg), 2)

    page.goto(f"{live_server.url}/")
    measure("dashboard badge", page.locator(".badge"))
    measure("cluster banner", page.locator(".banner-warning"))
    for status in (c.DELETED, c.FAILED, c.DEGRADED):
        store = stores_in_every_state[status]
        page.goto(f"{live_server.url}/stores/{store.id}/")
        measure(f"{status} badge", page.locator("#store-header .badge"))
        measure(f"{status} warning event", page.locator(".event-warning .what"))
        measure(f"{status} failure", page.locator(".failure p, .failure h2"))
        measure(f"{status} degraded notice", page.locator("#store-header .banner-warning"))
        measure(f"{status} muted text", page.locator(".muted"))
    assert len(ratios) >= 15
    assert {label: ratio for label, ratio in ratios.items() if ratio < 4.5} == {}


def test_each_group_of_states_has_a_badge_colour_of_its_own(
    chromium, live_server, user, stores_in_every_state
):
    page = open_page(chromium, live_server, user)
    backgrounds = {}
    page.goto(f"{live_server.url}/")
    for status, store in stores_in_every_state.items():
        if status == c.DELETED:
            page.goto(f"{live_server.url}/stores/{store.id}/")
            badge = page.locator("#store-header .badge")
        else:
            badge = page.locator(f"#store-{store.id} .badge")
        backgrounds[status] = colours(badge)[1]
    by_group = {}
    for status, colour in backgrounds.items():
        by_group.setdefault(STATE_GROUPS[status], set()).add(colour)
    assert all(len(shades) == 1 for shades in by_group.values()), by_group
    assert len({shades.pop() for shades in by_group.values()}) == len(by_group)
