"""The warm pool (issue 13): stores built before anyone asks.

For each engine the pool holds ``target_size(engine)`` stores with no owner, a
generic name and host, built by the same ``provision`` operation as a user's
store, which finishes them ``pooled`` instead of ``ready``. A create takes one
(``services._claim_pooled``); ``maintain`` (beat, and once after each claim)
tops the pool up, replaces what is stale or broken, and trims what is too
many. Pool work runs on its own Celery queue (``tasks.dispatch``), at most
STORE_POOL_REFILL_CONCURRENCY builds at a time: workers split by queue keep
it off users' operations entirely, shared ones give it at most that many
slots (docs/system-design.md, "Warm pool").

Pooled stores are invisible to users (they have no owner), counted in no
quota, shown in admin (status "Pooled"), upgraded by fleet upgrades; a pooled
store on an older chart is replaced rather than handed out.

With STORE_POOL_SUSPENDED, ``maintain`` also suspends each pooled store once
it is built (``services.suspend_store``, the users' suspend: status
``suspended``, still without an owner), so the pool requests no CPU or
memory; a claim resumes it in its own helm upgrade (provisioning/claim.py).
Turning the setting off leaves suspended pooled stores as they are: they are
claimed (and resumed) like the others, running ones first.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from provisioning import tasks
from provisioning.engines import ENGINES, EngineUnavailable
from stores import constants as c
from stores import services
from stores.models import PoolPolicy, Store, StoreEvent, new_store_id
from stores.naming import host_for

log = logging.getLogger(__name__)

ACTOR = services.Actor(None, via="pool")
POOLED_NAME = "Warm pool store"
# Stores of the pool on their way to ``pooled`` (or back, after an upgrade).
BUILDING_STATES = frozenset({c.REQUESTED, c.PROVISIONING})
# Waiting to be claimed: running, or suspended (STORE_POOL_SUSPENDED).
WAITING_STATES = services.CLAIMABLE_STATES
POOL_STATES = BUILDING_STATES | WAITING_STATES | {c.UPGRADING, c.ROLLING_BACK, c.SUSPENDING}
# Two maintain runs at once (a slow one and the next beat) could both see a
# gap and fill it twice.
LOCK_KEY = "storeplatform:pool:maintain"


def target_size(engine: str) -> int:
    """The pool size of an engine: its PoolPolicy row, else the setting."""
    size = PoolPolicy.objects.filter(engine=engine).values_list("size", flat=True).first()
    if size is not None:
        return size
    return getattr(settings, f"STORE_POOL_SIZE_{engine.upper()}", 0)


def pool_of(engine: str):
    """The engine's pool: stores without an owner that are pooled (or kept
    suspended) or on their way there."""
    return Store.objects.filter(owner__isnull=True, engine=engine,
                                status__in=list(POOL_STATES))


@shared_task(ignore_result=True)
def maintain() -> dict:
    """Beat: for each engine, replace stale and broken pooled stores, trim
    the pool to its size, suspend what waits (STORE_POOL_SUSPENDED) and
    start building what is missing."""
    if not cache.add(LOCK_KEY, "1", timeout=max(30, settings.STORE_POOL_INTERVAL)):
        return {}
    try:
        counts = {}
        for engine in ENGINES:
            counts[engine] = maintain_engine(engine)
        if any(any(v.values()) for v in counts.values()):
            log.info("warm pool: %s", counts)
        return counts
    finally:
        cache.delete(LOCK_KEY)


def maintain_engine(engine: str) -> dict:
    counts = {"replaced": 0, "trimmed": 0, "suspended": 0, "started": 0}
    size = target_size(engine)
    try:
        ENGINES[engine].check_available()
    except EngineUnavailable:
        size = 0  # nothing can be built; what is there goes
    current = ENGINES[engine].chart_version

    # A pooled store on an older chart is deleted, not handed out: the refill
    # below builds its replacement on the current one. Failed ones (a build
    # that did not finish) go the same way; a failed deletion is the
    # reconciler's to retry.
    unusable = Store.objects.filter(owner__isnull=True, engine=engine).filter(
        status__in=list(WAITING_STATES)).exclude(chart_version=current) | Store.objects.filter(
        owner__isnull=True, engine=engine, status=c.FAILED).exclude(operation=c.OP_DELETE)
    for store in unusable:
        if _delete(store, "Replaced: a pooled store on an older chart or a failed build."):
            counts["replaced"] += 1

    pool = list(pool_of(engine).order_by("created_at", "id"))
    # Too many (the size went down): the newest waiting ones go first.
    surplus = len(pool) - size
    for store in reversed([s for s in pool if s.status in WAITING_STATES]):
        if surplus <= 0:
            break
        if _delete(store, "Trimmed: the warm pool is smaller now."):
            counts["trimmed"] += 1
            surplus -= 1

    if settings.STORE_POOL_SUSPENDED:
        counts["suspended"] = _suspend_waiting(engine, current)

    building = sum(1 for s in pool if s.status in BUILDING_STATES)
    missing = size - len(pool)
    for _ in range(max(0, min(missing, settings.STORE_POOL_REFILL_CONCURRENCY - building))):
        create_pooled(engine)
        counts["started"] += 1
    return counts


def _suspend_waiting(engine: str, current: str) -> int:
    """Suspend the engine's running pooled stores on the current chart (a
    stale one is replaced, not suspended). A suspend is one helm upgrade of
    a running release, on the pool's queue like its builds; a claim that
    takes the store first wins (the request expects ``pooled``)."""
    suspended = 0
    for store in pool_of(engine).filter(status=c.POOLED, chart_version=current):
        try:
            services.suspend_store(ACTOR, store)
        except services.StoreRequestError as exc:
            log.info("warm pool: store=%s not suspended: %s", store.id, exc.message)
            continue
        suspended += 1
    return suspended


def _delete(store: Store, why: str) -> bool:
    try:
        services.delete_store(ACTOR, store)
    except services.StoreRequestError as exc:
        log.info("warm pool: store=%s not deleted: %s", store.id, exc.message)
        return False
    StoreEvent.objects.create(store=store, kind=c.EVENT_INFO, message=why, actor=ACTOR.label)
    return True


def create_pooled(engine: str) -> Store:
    """Request one pooled store: a provision like a user's, with no owner,
    a generic name and a host of its own (``pool-<id>``)."""
    store_id = new_store_id()
    slug = f"pool-{store_id}"
    now = timezone.now()
    with transaction.atomic():
        store = Store.objects.create(
            id=store_id, owner=None, name=POOLED_NAME, slug=slug, host=host_for(slug),
            engine=engine, operation=c.OP_PROVISION, created_at=now,
            deadline_at=tasks.deadline_for(c.OP_PROVISION),
        )
        StoreEvent.objects.create(
            store=store, created_at=now, kind=c.EVENT_STATUS, status_to=c.REQUESTED,
            message=f"{ENGINES[engine].title} store requested for the warm pool.",
            actor=ACTOR.label,
        )
        services.audit(ACTOR, "create", store.id, name=POOLED_NAME, engine=engine, pooled=True)
        transaction.on_commit(lambda: tasks.dispatch(store.id, c.OP_PROVISION))
    return store
