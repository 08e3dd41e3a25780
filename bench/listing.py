"""Benchmark 3: does listing cost stay flat as stores pile up?

    .venv/bin/python bench/listing.py [--small 100] [--large 10000] [--requests 60]

Fills PostgreSQL directly with the ORM (bulk inserts): one owner with a big
quota gets ``--small`` stores, then ``--large`` in all, each with 20 events;
four other users own 1,000 stores each throughout (a staff user sees them
all). At each size it measures:

- GET /api/stores/ (one page, token auth), as the owner and as staff;
- GET / (the dashboard), logged in;
- GET /stores/changes/?since=... (the live-refresh fragment): nothing
  changed (204) and three stores changed (200).

Timings go through real HTTP (gunicorn, 2 sync workers, keep-alive client):
p50/p95 of ``--requests`` requests after a warm-up. SQL queries are counted
in this process with the Django test client and CaptureQueriesContext (the
same views and settings, no network). Targets: the same number of queries at
both sizes (at most 6), and p95 at the large size <= 1.5x p95 at the small.

Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Stack, machine, ms, summary, table

EVENTS_PER_STORE = 20
OTHER_USERS = 4
OTHER_STORES = 1000
MAX_QUERIES = 6
MAX_RATIO = 1.5


def fill(owner, count: int, prefix: str, start_at) -> None:
    """``count`` stores of ``owner`` with their events, older than ``start_at``."""
    from stores import constants as c
    from stores.models import Store, StoreEvent

    rng = random.Random(f"{owner.pk}-{prefix}")
    batch = 1000
    for first in range(0, count, batch):
        stores = []
        for i in range(first, min(count, first + batch)):
            roll = rng.random()
            status = c.DELETED if roll < 0.05 else c.FAILED if roll < 0.10 else c.READY
            slug = f"{prefix}-{i}"
            stores.append(Store(
                owner=owner, name=f"Store {prefix} {i}", slug=slug,
                host=f"{slug}.localtest.me", engine="woocommerce", status=status,
                operation=c.OP_PROVISION, created_at=start_at - timedelta(minutes=i),
                ready_at=start_at - timedelta(minutes=i) + timedelta(seconds=90),
                helm_revision=1, chart_version="1.0.0",
            ))
        Store.objects.bulk_create(stores)
        events = []
        for store in stores:
            at = store.created_at
            for n in range(EVENTS_PER_STORE):
                kind = c.EVENT_STATUS if n in (0, 1, EVENTS_PER_STORE - 1) else c.EVENT_STEP
                events.append(StoreEvent(
                    store_id=store.id, created_at=at + timedelta(seconds=n), kind=kind,
                    status_to=c.READY if kind == c.EVENT_STATUS else "",
                    step="" if kind == c.EVENT_STATUS else f"Step {n}", actor="worker",
                    message="Something happened to the store, in a sentence.",
                ))
        StoreEvent.objects.bulk_create(events, batch_size=5000)


def count_queries(path: str, *, token: str | None = None, user=None,
                  expect: int = 200) -> int:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    headers = {}
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Token {token}"
    if user is not None:
        client.force_login(user)
    client.get(path, **headers)  # warm caches (cluster status, content types)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path, **headers)
    if response.status_code != expect:
        raise RuntimeError(f"{path} answered {response.status_code}, expected {expect}")
    return len(queries)


def time_http(session, url: str, n: int, expect: int, headers: dict | None = None) -> list[float]:
    for _ in range(5):
        session.get(url, headers=headers)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = session.get(url, headers=headers)
        times.append(time.perf_counter() - started)
        if response.status_code != expect:
            raise RuntimeError(f"{url} answered {response.status_code}, expected {expect}")
    return times


def measure(stack: Stack, staff, staff_token: str, n: int) -> dict[str, dict]:
    import requests
    from django.utils import timezone

    from stores.models import Store

    owner = stack.user
    cookies = stack.session_cookie(owner)
    web = requests.Session()
    web.cookies.update(cookies)
    api = requests.Session()
    results = {}

    def case(name, path, expect=200, token=None, user=None, session=web, informational=False):
        queries = count_queries(path, token=token, user=user, expect=expect)
        headers = {"Authorization": f"Token {token}"} if token else None
        times = time_http(session, stack.web_url + path, n, expect, headers)
        results[name] = {"queries": queries, "informational": informational, **summary(times)}

    case("API list (owner)", "/api/stores/", token=stack.token, session=api)
    case("API list (staff)", "/api/stores/", token=staff_token, session=api)
    case("dashboard /", "/", user=owner)
    staff_web = requests.Session()
    staff_web.cookies.update(stack.session_cookie(staff))
    case("admin store list (staff)", "/admin/stores/store/", user=staff, session=staff_web,
         informational=True)
    since = timezone.now()
    case("changes, nothing new (204)", f"/stores/changes/?since={quote(since.isoformat())}",
         expect=204, user=owner)
    since = timezone.now()
    time.sleep(0.01)
    changed = list(Store.objects.filter(owner=owner).values_list("id", flat=True)[:3])
    Store.objects.filter(pk__in=changed).update(updated_at=timezone.now())
    case("changes, 3 stores new (200)", f"/stores/changes/?since={quote(since.isoformat())}",
         user=owner)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with Stack(workers=0, web_workers=2) as stack:
        from django.utils import timezone

        now = timezone.now()
        staff, staff_token = stack.create_user("staff", staff=True)
        started = time.monotonic()
        for u in range(OTHER_USERS):
            other, _ = stack.create_user(f"other{u}")
            fill(other, OTHER_STORES, f"o{u}", now)
        fill(stack.user, args.small, "s", now)
        print(f"filled {args.small} + {OTHER_USERS * OTHER_STORES} stores in "
              f"{time.monotonic() - started:.1f} s", flush=True)
        small = measure(stack, staff, staff_token, args.requests)
        started = time.monotonic()
        fill(stack.user, args.large - args.small, "l", now - timedelta(days=30))
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"filled up to {args.large} stores in {time.monotonic() - started:.1f} s",
              flush=True)
        large = measure(stack, staff, staff_token, args.requests)

    ok = True
    rows = []
    for name in small:
        a, b = small[name], large[name]
        ratio = b["p95"] / a["p95"]
        good = a["queries"] == b["queries"] <= MAX_QUERIES and ratio <= MAX_RATIO
        verdict = "PASS" if good else "MISS"
        if a["informational"]:
            verdict = "(no target)"
        else:
            ok = ok and good
        rows.append([name, f"{a['queries']} / {b['queries']}", ms(a["p50"]), ms(a["p95"]),
                     ms(b["p50"]), ms(b["p95"]), f"{ratio:.2f}x", verdict])
    print(f"\nowner with {args.small} vs {args.large} stores ({EVENTS_PER_STORE} events each; "
          f"{OTHER_USERS} other users with {OTHER_STORES} each); real HTTP, "
          f"{args.requests} requests each")
    print(table(rows, ["request", "queries", f"p50 @{args.small}", f"p95 @{args.small}",
                       f"p50 @{args.large}", f"p95 @{args.large}", "p95 ratio", ""]))
    print(f"targets: same query count at both sizes, <= {MAX_QUERIES}; p95 ratio <= {MAX_RATIO}x."
          " Baseline (issue 1): listing 10,000 stores took 60x as long as listing 100.")
    print(f"\nresult: {'all targets met' if ok else 'TARGET MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
