"""Periodic checks that keep the platform honest about the cluster.

- ``check_health``: drift. A ready store whose release is no longer
  deployed, whose pods are not ready, whose storefront stops answering, or
  whose certificate is expired or otherwise invalid (TLS on) becomes
  ``degraded`` with a reason, and returns to ``ready`` on its own
  when healthy again. Each change is an event. Suspended stores (issue 13)
  are not checked: they run no pods and their address shows the paused
  page on purpose, so nothing about them is drift.
- ``sweep_orphans``: namespaces carrying our labels that belong to no live
  store (a crash between steps, a manual restore, a bug). They are listed in
  admin and removed once seen for longer than the grace period, unless the
  sweep runs in dry-run mode.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from provisioning import kube, probe
from provisioning.errors import ProvisioningError
from stores import constants as c
from stores.models import Orphan, Store
from stores.transitions import record_event, transition

log = logging.getLogger(__name__)
ACTOR = "health-check"


def find_problem(store: Store) -> tuple[str, str] | None:
    """(reason, message) of what is wrong with a running store, or None."""
    release = kube.release_status(store.namespace, store.release)
    if release != "deployed":
        return c.REASON_RELEASE_NOT_DEPLOYED, (
            f"The helm release {store.release} is {release or 'missing'}."
        )
    unready = kube.unready_pods(store.namespace)
    if unready:
        return c.REASON_PODS_NOT_READY, "Not ready: " + "; ".join(unready[:5])
    urls = [store.storefront_url]
    if store.primary_url not in urls:
        urls.append(store.primary_url)
    for url in urls:
        result = probe.check(url)
        if result.certificate_error:
            return c.REASON_CERTIFICATE_INVALID, (
                f"The storefront at {url} answers, but {result.detail}.")
        if not result.ok:
            return c.REASON_STOREFRONT_DOWN, (
                f"The storefront at {url} does not answer ({result.detail}).")
    return None


@shared_task(ignore_result=True)
def check_health(limit: int = 200) -> dict:
    """Check the running stores checked longest ago (at most ``limit``)."""
    now = timezone.now()
    counts = {"checked": 0, "degraded": 0, "recovered": 0, "skipped": 0}
    stores = (
        Store.objects.filter(status__in=list(c.RUNNING_STATES))
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        .order_by(F("health_checked_at").asc(nulls_first=True))[:limit]
    )
    for store in stores:
        try:
            problem = find_problem(store)
        except ProvisioningError as exc:
            # The cluster being away is not the store's fault: no verdict.
            log.warning("health check skipped store=%s: %s", store.id, exc.message)
            counts["skipped"] += 1
            continue
        counts["checked"] += 1
        Store.objects.filter(pk=store.id).update(health_checked_at=timezone.now())
        if problem and store.status == c.READY:
            reason, message = problem
            if transition(store.id, c.DEGRADED, expect={c.READY}, reason=reason,
                          message=message, actor=ACTOR):
                counts["degraded"] += 1
        elif problem and problem[0] != store.status_reason:
            # Still degraded, for another reason now: say so.
            reason, message = problem
            Store.objects.filter(pk=store.id, status=c.DEGRADED).update(
                status_reason=reason, status_message=message, updated_at=timezone.now())
            record_event(store.id, c.EVENT_WARNING, message, reason=reason, actor=ACTOR)
        elif (not problem and store.status == c.DEGRADED
              and transition(store.id, c.READY, expect={c.DEGRADED}, actor=ACTOR,
                             message="Healthy again.")):
            counts["recovered"] += 1
    return counts


@shared_task(ignore_result=True)
def sweep_orphans(dry_run: bool | None = None) -> dict:
    dry_run = settings.STORE_ORPHAN_DRY_RUN if dry_run is None else dry_run
    now = timezone.now()
    grace = timedelta(seconds=settings.STORE_ORPHAN_GRACE)
    counts = {"orphans": 0, "removed": 0}
    seen = set()
    namespaces = kube.managed_namespaces()
    live = set(
        Store.objects.filter(id__in=[ns["store_id"] for ns in namespaces])
        .exclude(status=c.DELETED).values_list("id", flat=True)
    )
    for ns in namespaces:
        if ns["store_id"] in live:
            continue
        seen.add(ns["name"])
        why = ("its store was deleted" if Store.objects.filter(pk=ns["store_id"]).exists()
               else "no store has this id")
        orphan, _ = Orphan.objects.update_or_create(
            namespace=ns["name"],
            defaults={"store_id": ns["store_id"], "why": why, "last_seen": now},
        )
        counts["orphans"] += 1
        if dry_run or orphan.removed_at or now - orphan.first_seen < grace:
            continue
        if ns["phase"] != "Terminating":
            log.warning("removing orphan namespace %s (%s)", ns["name"], why)
            kube.delete_namespace(ns["name"])
        counts["removed"] += 1
    # Whatever is gone from the cluster is no longer an orphan.
    Orphan.objects.filter(removed_at__isnull=True).exclude(namespace__in=seen).update(
        removed_at=now
    )
    return counts
