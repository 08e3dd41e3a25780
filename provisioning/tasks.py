"""Celery tasks that carry out store operations, and the reconciler that
makes sure every accepted operation is carried out.

One store's path (docs/system-design.md has the whole state machine):

    requested --provision_store--> provisioning --> ready <--check_health--> degraded
                                        |             |
                                        |             +--upgrade_store--> upgrading --> ready
                                        |             +--rollback_store--> rolling_back --> ready
                                        |             +--change_store_url--> changing_url --> ready
                                        |             +--suspend_store--> suspending --> suspended
                                        |     suspended --resume_store--> resuming --> ready
                                        |     suspended --upgrade_store--> upgrading --> suspended
                                        +--> pooled (no owner) --claim_store--> claiming --> ready
                                        |             +--back_up_store--> backing_up --> ready
                                        |             +--restore_store--> restoring --> ready
                                        +--> failed --retry--> (the operation that failed)
    any live state --delete--> deleting --delete_store--> deleted

Tasks take store ids, never model instances, and each is one line: the
guarded operation (``provisioning.operations.run``) with the operation's
``Spec``. Every operation runs under a lease renewed by a heartbeat, has a
deadline, and is idempotent, so the reconciler can safely run it again when
a worker vanished.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from provisioning import backups, claim, deletion, domains, install, metrics, operations
from provisioning.operations import Spec, StoreTask
from stores import constants as c
from stores import transitions
from stores.models import Store
from stores.transitions import record_event

log = logging.getLogger(__name__)

SPECS = {
    spec.kind: spec
    for spec in [
        # A clone is restored from its backup before it is ready (issue 12).
        Spec(c.OP_PROVISION, backups.provision, timeout=settings.STORE_PROVISION_TIMEOUT),
        # Upgrades and rollbacks take a backup first (issue 12).
        Spec(c.OP_UPGRADE, backups.upgrade,
             timeout=settings.STORE_PROVISION_TIMEOUT + settings.STORE_BACKUP_TIMEOUT),
        Spec(c.OP_ROLLBACK, backups.rollback,
             timeout=settings.STORE_PROVISION_TIMEOUT + settings.STORE_BACKUP_TIMEOUT),
        Spec(c.OP_DELETE, deletion.delete, timeout=settings.STORE_DELETE_TIMEOUT,
             cancel_on_delete=False, wait_for_lease=True),
        Spec(c.OP_CHANGE_URL, domains.change_url,
             timeout=settings.STORE_PROVISION_TIMEOUT + settings.STORE_CERTIFICATE_TIMEOUT),
        # Suspend and resume (issue 13): the release with its values switch
        # `suspended` on or off (provisioning/install.py).
        Spec(c.OP_SUSPEND, install.install, timeout=settings.STORE_PROVISION_TIMEOUT),
        Spec(c.OP_RESUME, install.install, timeout=settings.STORE_PROVISION_TIMEOUT),
        Spec(c.OP_CLAIM, claim.claim,
             timeout=settings.STORE_PROVISION_TIMEOUT + settings.STORE_CERTIFICATE_TIMEOUT),
        # Backups and restores (issue 12, provisioning/backups.py).
        Spec(c.OP_BACKUP, backups.backup, timeout=settings.STORE_BACKUP_TIMEOUT),
        Spec(c.OP_RESTORE, backups.restore,
             timeout=2 * settings.STORE_BACKUP_TIMEOUT + 2 * settings.STORE_PROVISION_TIMEOUT),
    ]
}


@shared_task(bind=True, base=StoreTask, **SPECS[c.OP_PROVISION].task_limits())
def provision_store(self, store_id: str) -> str:
    return operations.run(self, store_id, SPECS[c.OP_PROVISION])


@shared_task(bind=True, base=StoreTask, **SPECS[c.OP_UPGRADE].task_limits())
def upgrade_store(self, store_id: str) -> str:
    return operations.run(self, store_id, SPECS[c.OP_UPGRADE])


@shared_task(bind=True, base=StoreTask, **SPECS[c.OP_ROLLBACK].task_limits())
def rollback_store(self, store_id: str) -> str:
    return operations.run(self, store_id, SPECS[c.OP_ROLLBACK])


@shared_task(bind=True, base=StoreTask, **SPECS[c.OP_DELETE].task_limits())
def delete_store(self, store_id: str) -> str:
    return operations.run(self, store_id, SPECS[c.OP_DELETE])


@shared_task(bind=True, base=StoreTask, **SPECS[c.OP_CHANGE_URL].task_limits())
def change_store_url(self, store_id: str) -> str:
    return operations.run(self, store_id, SPECS[c.OP_CHANGE_URL])


@shared_task(bind=True, base=StoreTask, **SPECS[c.OP_SUSPEND].task_limits())
def suspend_store(self, store_id: str) -> str:
    return operations.run(self, store_id, SPECS[c.OP_SUSPEND])


@shared_task(bind=True, base=StoreTask, **SPECS[c.OP_RESUME].task_limits())
def resume_store(self, store_id: str) -> str:
    return operations.run(self, store_id, SPECS[c.OP_RESUME])


@shared_task(bind=True, base=StoreTask, **SPECS[c.OP_CLAIM].task_limits())
def claim_store(self, store_id: str) -> str:
    return operations.run(self, store_id, SPECS[c.OP_CLAIM])


@shared_task(bind=True, base=StoreTask, **SPECS[c.OP_BACKUP].task_limits())
def backup_store(self, store_id: str) -> str:
    return operations.run(self, store_id, SPECS[c.OP_BACKUP])


@shared_task(bind=True, base=StoreTask, **SPECS[c.OP_RESTORE].task_limits())
def restore_store(self, store_id: str) -> str:
    return operations.run(self, store_id, SPECS[c.OP_RESTORE])


TASKS = {c.OP_PROVISION: provision_store, c.OP_DELETE: delete_store,
         c.OP_UPGRADE: upgrade_store, c.OP_ROLLBACK: rollback_store,
         c.OP_CHANGE_URL: change_store_url, c.OP_SUSPEND: suspend_store,
         c.OP_RESUME: resume_store, c.OP_CLAIM: claim_store,
         c.OP_BACKUP: backup_store, c.OP_RESTORE: restore_store}


def dispatch(store_id: str, operation: str) -> bool:
    """Publish the task for a store. Never raises: if the broker is down,
    the reconciler publishes it later (the request is already persisted).

    Work on a store with no owner (the warm pool's builds, upgrades and
    replacements) goes to its own queue, so it does not wait in line in
    front of a user's operation (docs/system-design.md, "Warm pool")."""
    Store.objects.filter(pk=store_id).update(dispatched_at=timezone.now())
    pooled = Store.objects.filter(pk=store_id, owner__isnull=True).exists()
    queue = settings.STORE_POOL_QUEUE if pooled else None
    try:
        TASKS[operation].apply_async(args=[store_id], retry=False, queue=queue)
        return True
    except Exception as exc:  # kombu raises a variety of connection errors
        log.warning("store=%s could not publish %s, the reconciler will: %s",
                    store_id, operation, exc, extra={"store": store_id})
        return False


def deadline_for(operation: str):
    """When a requested operation must have finished, pickup delays included.
    The worker that picks it up starts a fresh budget (operations.run)."""
    return timezone.now() + SPECS[operation].budget + timedelta(seconds=600)


@shared_task(ignore_result=True)
def reconcile() -> dict:
    """Find accepted work that no live worker is doing and (re)start it.

    - requested stores never picked up (broker was down, message lost);
    - busy stores whose worker's lease expired (the worker died): resume
      them, they are idempotent;
    - operations past their deadline: fail them with a reason;
    - failed deletions: try again every STORE_DELETE_RETRY_INTERVAL.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.STORE_RECONCILE_INTERVAL)
    counts = {"dispatched": 0, "resumed": 0, "failed": 0}
    free = Store.objects.filter(lease_expires_at__isnull=True) | Store.objects.filter(
        lease_expires_at__lt=now
    )

    for store in free.filter(status__in=list(c.BUSY_STATES)).only(
        "id", "status", "engine", "dispatched_at", "deadline_at", "operation", "started_at",
        "current_step",
    ):
        operation = _operation_of(store.status)
        if store.deadline_at and store.deadline_at < now:
            if _fail_overdue(store, operation):
                counts["failed"] += 1
            continue
        if store.dispatched_at and store.dispatched_at > stale:
            continue  # recently sent; give the worker time to pick it up
        if store.started_at is not None:
            record_event(store.id, c.EVENT_INFO,
                         "The worker stopped responding; resuming the operation.",
                         reason=c.REASON_WORKER_LOST, actor="reconciler")
            counts["resumed"] += 1
        else:
            counts["dispatched"] += 1
        dispatch(store.id, operation)

    # A deletion that failed (a namespace stuck on a finalizer) is retried
    # until the namespace is gone; the operator sees each attempt.
    retry_before = now - timedelta(seconds=settings.STORE_DELETE_RETRY_INTERVAL)
    for store_id in Store.objects.filter(
        status=c.FAILED, operation=c.OP_DELETE, updated_at__lt=retry_before
    ).values_list("id", flat=True):
        if transitions.request_operation(
            store_id, c.OP_DELETE, expect={c.FAILED}, actor="reconciler",
            message="Retrying the deletion.", deadline=deadline_for(c.OP_DELETE),
        ):
            dispatch(store_id, c.OP_DELETE)
            counts["resumed"] += 1
    if any(counts.values()):
        log.info("reconcile: %s", counts)
    return counts


def _operation_of(status: str) -> str:
    """The operation a busy state stands for."""
    return next(op for op in c.OPERATION_STATES
                if status in (c.REQUEST_STATES[op], c.OPERATION_STATES[op]))


def _fail_overdue(store: Store, operation: str) -> bool:
    """An operation past its deadline with no live worker: fail it."""
    reason = c.REASON_NAMESPACE_STUCK if operation == c.OP_DELETE else c.REASON_TIMED_OUT
    if store.current_step == c.STEP_WAITING_FOR_CERTIFICATE:
        reason = c.REASON_CERTIFICATE_NOT_ISSUED
    if not transitions.transition(
        store.id, c.FAILED, expect={store.status}, reason=reason, actor="reconciler",
        message=f"The {operation} passed its deadline without finishing.",
    ):
        return False
    metrics.count_failure(operation, store.engine, reason)
    return True
