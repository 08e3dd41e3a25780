"""Scheduled backups and the retention of deleted stores' backups (issue 12).

Beat runs ``run_due`` every STORE_BACKUP_CHECK_INTERVAL seconds. A store's
scheduled backup is due once a time of STORE_BACKUP_SCHEDULE (cron syntax,
UTC), shifted by the store's own offset, has passed since its last one. The
offset (a hash of the store's id, within STORE_BACKUP_SPREAD_MINUTES) keeps
a thousand stores from starting at once, and is the same every day, so each
store's backups stay a schedule period apart.

Each due store gets the ordinary ``backup`` operation (stores.services), so
a scheduled backup follows the same lease as any other work on the store:
a store that is busy now is backed up at the next run.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from celery import shared_task
from celery.schedules import crontab
from django.conf import settings
from django.utils import timezone

from stores import constants as c
from stores.models import Backup, Store

log = logging.getLogger(__name__)


class BadSchedule(ValueError):
    pass


def schedule() -> crontab:
    """STORE_BACKUP_SCHEDULE as a crontab ("minute hour day month weekday")."""
    fields = settings.STORE_BACKUP_SCHEDULE.split()
    if len(fields) != 5:
        raise BadSchedule(f"STORE_BACKUP_SCHEDULE must have 5 fields (minute hour day month "
                          f"weekday), not {settings.STORE_BACKUP_SCHEDULE!r}")
    minute, hour, day, month, weekday = fields
    try:
        return crontab(minute=minute, hour=hour, day_of_month=day, month_of_year=month,
                       day_of_week=weekday)
    except ValueError as exc:
        raise BadSchedule(f"STORE_BACKUP_SCHEDULE {settings.STORE_BACKUP_SCHEDULE!r}: {exc}") \
            from exc


def offset_of(store_id: str) -> timedelta:
    """The store's fixed place in the spread window."""
    spread = max(settings.STORE_BACKUP_SPREAD_MINUTES, 0) * 60
    if not spread:
        return timedelta(0)
    digest = int.from_bytes(hashlib.sha256(store_id.encode()).digest()[:8], "big")
    return timedelta(seconds=digest % spread)


def last_slot(cron: crontab, now: datetime) -> datetime:
    """The latest time of the schedule at or before ``now`` (minute precision)."""
    at = now.replace(second=0, microsecond=0)
    # The sets crontab parsed; walking back minute by minute is bounded by a
    # year and cheap next to a database query (a daily schedule: <= 1440).
    for _ in range(366 * 24 * 60):
        if (at.minute in cron.minute and at.hour in cron.hour
                and at.day in cron.day_of_month and at.month in cron.month_of_year
                and (at.isoweekday() % 7) in cron.day_of_week):
            return at
        at -= timedelta(minutes=1)
    raise BadSchedule(f"STORE_BACKUP_SCHEDULE {settings.STORE_BACKUP_SCHEDULE!r} never runs")


def is_due(store: Store, last_backup_at: datetime | None, now: datetime,
           cron: crontab) -> bool:
    """Due when the store's shifted slot has passed since its last
    scheduled backup (or since it was created)."""
    offset = offset_of(store.id)
    slot = last_slot(cron, now - offset) + offset
    since = last_backup_at or store.ready_at or store.created_at
    return since < slot <= now


@shared_task(ignore_result=True)
def run_due() -> dict:
    """Start the scheduled backups that are due, then let go of deleted
    stores' backups past STORE_BACKUP_KEEP_AFTER_DELETE days."""
    from provisioning import backups
    from stores import services

    counts = {"started": 0, "busy": 0, "expired": 0, "abandoned": abandon_orphans()}
    if backups.missing_setting():
        return counts
    now = timezone.now()
    cron = schedule()
    system = services.Actor(None, via="schedule")
    stores = Store.objects.filter(status__in=list(c.RUNNING_STATES), owner__isnull=False)
    for store in stores.only("id", "status", "ready_at", "created_at", "suspended"):
        last = (Backup.objects.filter(store=store, kind=c.BACKUP_SCHEDULED)
                .order_by("-created_at").values_list("created_at", flat=True).first())
        if not is_due(store, last, now, cron):
            continue
        try:
            services.back_up_store(system, store, kind=c.BACKUP_SCHEDULED)
            counts["started"] += 1
        except services.StoreRequestError:
            counts["busy"] += 1  # it moved meanwhile; the next run catches it
    try:
        counts["expired"] = backups.expire_deleted_stores()
    except backups.objectstore.ObjectStoreError as exc:  # the next run tries again
        log.warning("could not expire deleted stores' backups: %s", exc)
    if counts["started"] or counts["expired"] or counts["abandoned"]:
        log.info("scheduled backups: %s", counts)
    return counts


def abandon_orphans() -> int:
    """Backups left pending or running by an operation that ended without
    them (force-failed by an operator, or failed at its deadline) are
    failed backups, and say so."""
    from stores.transitions import record_event

    orphans = Backup.objects.filter(status__in=list(c.BACKUP_OPEN_STATES)).exclude(
        store__status__in=list(c.BUSY_STATES))
    count = 0
    for backup in orphans.only("id", "store_id"):
        message = "The operation taking it stopped before it finished."
        if Backup.objects.filter(pk=backup.pk, status__in=list(c.BACKUP_OPEN_STATES)).update(
                status=c.BACKUP_FAILED, error=message, finished_at=timezone.now()):
            record_event(backup.store_id, c.EVENT_WARNING, f"Backup {backup.id} failed: "
                         f"{message}", reason=c.REASON_BACKUP_FAILED, actor="schedule",
                         details={"backup": backup.id, "backup_status": c.BACKUP_FAILED})
            count += 1
    return count
