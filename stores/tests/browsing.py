"""What the browser tests share: a signed-in page at a given width and time
zone, stores put straight into a state (for looks; the live tests move them
on with ``stores.transitions`` like a worker does), axe-core runs, and the
colour arithmetic of WCAG contrast."""

from __future__ import annotations

import re
from datetime import timedelta

from django.test import Client
from django.utils import timezone

from stores import constants as c
from stores.models import Revision, Store, StoreEvent

DESKTOP = 1280
PHONE = 390


def open_page(browser, live_server, user=None, *, width: int = DESKTOP, tz: str = "UTC",
              locale: str = "en-US"):
    """A new page in its own browser context, signed in as ``user`` (through
    a session made by Django's test client, not the login form).

    ``bypass_csp`` lets the tests inject axe-core into pages that forbid
    inline scripts; the pages themselves never rely on it."""
    context = browser.new_context(
        viewport={"width": width, "height": 900}, timezone_id=tz, locale=locale,
        bypass_csp=True,
    )
    if user is not None:
        client = Client()
        client.force_login(user)
        context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                              "url": live_server.url}])
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def put_store(owner, name: str, status: str, *, engine: str = "woocommerce",
              created_at=None, **fields) -> Store:
    """A store in ``status``, with the first event of its timeline."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:50]
    created_at = created_at or timezone.now() - timedelta(minutes=5)
    store = Store.objects.create(owner=owner, name=name, slug=slug,
                                 host=f"{slug}.localtest.me", engine=engine, status=status,
                                 created_at=created_at, **fields)
    StoreEvent.objects.create(store=store, kind=c.EVENT_STATUS, status_to=c.REQUESTED,
                              created_at=created_at, message="WooCommerce store requested.",
                              actor=f"web:{owner.get_username()}")
    return store


def put_revision(store: Store, number: int, status: str, version: str, **fields) -> Revision:
    return Revision.objects.create(
        store=store, number=number, status=status, chart=f"{store.engine}-{version}",
        updated_at=fields.pop("updated_at", timezone.now()),
        description=fields.pop("description", "Install complete" if number == 1 else
                               "Upgrade complete"), **fields)


def horizontal_overflow(page) -> int:
    """How many pixels the page is wider than the window (0: no sideways scrolling)."""
    return page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")


def axe_violations(page, axe_script: str, impacts=("serious", "critical")) -> list[str]:
    """axe-core's violations of the given impacts on the page as it is now,
    one line each: rule, impact, the first offending elements."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_script)
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ': ' + n.failureSummary)}));
    }""")
    return [f"{v['id']} ({v['impact']}): {v['help']} -- {' | '.join(v['nodes'])}"
            for v in result if v["impact"] in impacts]


def parse_rgb(value: str) -> tuple[float, float, float, float]:
    """A computed CSS colour (``rgb(r, g, b)`` or ``rgba(r, g, b, a)``)."""
    numbers = [float(n) for n in re.findall(r"[\d.]+", value)]
    return (*numbers[:3], numbers[3] if len(numbers) > 3 else 1.0)


def _luminance(rgb) -> float:
    def channel(v: float) -> float:
        v /= 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(foreground, background) -> float:
    """WCAG 2 contrast ratio of two opaque colours."""
    high, low = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


# The text colour and the effective background of an element: the first
# ancestor (itself included) whose background is not transparent.
COLOURS_JS = """el => {
    const fg = getComputedStyle(el).color;
    let node = el, bg = 'rgba(0, 0, 0, 0)';
    while (node && node.nodeType === 1) {
        const value = getComputedStyle(node).backgroundColor;
        if (!/rgba\\(.*,\\s*0\\)$/.test(value) && value !== 'transparent') { bg = value; break; }
        node = node.parentElement;
    }
    if (bg === 'rgba(0, 0, 0, 0)') bg = 'rgb(255, 255, 255)';
    return [fg, bg];
}"""


def colours(locator) -> tuple[tuple, tuple]:
    fg, bg = locator.evaluate(COLOURS_JS)
    return parse_rgb(fg), parse_rgb(bg)
