"""Celery tasks that bring stores into existence and remove them.

One store's path (docs/system-design.md has the picture):

    requested --provision_store--> provisioning --> ready
                                        |
                                        +--> failed --retry--> requested
    any live state --delete--> deleting --delete_store--> deleted

Tasks take store ids, never model instances. Every operation runs under a
lease (``provisioning.lease``) renewed by a heartbeat while helm runs, has a
deadline, and is idempotent, so the reconciler can safely run it again when
a worker vanished.
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import yaml
from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from provisioning import errors, helm, kube, lease, metrics, probe
from provisioning.engines import SECRET_NAME, get_engine
from storeplatform.logging import log_context
from stores import constants as c
from stores.models import Store, StoreCredentials
from stores.transitions import record_event, set_step, transition

log = logging.getLogger(__name__)

ACTOR = "worker"
# Work that must finish after helm's own timeout: chart rendering, the
# storefront probe, recovery of a stuck release.
DEADLINE_MARGIN = 180


def _backoff(retries: int) -> float:
    return settings.STORE_RETRY_BACKOFF * (2**retries)


class StoreTask(Task):
    """Base task: whatever escapes an operation still leaves a final state.

    The operations catch their own errors; this is the last line for what
    escapes them (the database failing while we record a failure, say). If
    even this cannot write, the reconciler fails the store at its deadline.
    """

    abstract = True
    acks_late = True
    reject_on_worker_lost = True
    max_retries = None  # bounded by the store's deadline, see _retry_or_fail

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        store_id = args[0] if args else kwargs.get("store_id")
        log.error("store=%s task %s crashed: %r", store_id, self.name, exc,
                  extra={"store": store_id, "task_id": task_id})
        try:
            held = Store.objects.filter(pk=store_id, lease_owner=(task_id or "")[:64])
            if held.exists():
                transition(store_id, c.FAILED, expect=c.BUSY_STATES, reason=c.REASON_INTERNAL,
                           message=f"The operation crashed: {exc.__class__.__name__}",
                           actor=ACTOR, lease_owner="", lease_expires_at=None,
                           deadline_at=None, started_at=None)
        except Exception:
            log.exception("store=%s could not record the crash", store_id)


@dataclass
class Operation:
    """Per-run state of one provisioning or deletion attempt."""

    store: Store
    worker: str
    kind: str
    cancel_on_delete: bool = False
    watch_quota: bool = False
    started: float = field(default_factory=time.monotonic)
    _last_beat: float = 0.0
    _last_quota_check: float = 0.0

    def tick(self) -> None:
        """Heartbeat while helm runs: renew the lease, notice a deletion,
        fail early on a quota rejection the events already show."""
        now = time.monotonic()
        if now - self._last_beat >= settings.STORE_HEARTBEAT_SECONDS:
            self._last_beat = now
            lease.renew(self.store.id, self.worker)
            if self.cancel_on_delete and Store.objects.filter(
                pk=self.store.id, status=c.DELETING
            ).exists():
                raise errors.Cancelled()
        if self.watch_quota and now - self._last_quota_check >= 5:
            self._last_quota_check = now
            message = kube.quota_rejection(self.store.namespace)
            if message:
                raise errors.QuotaExceeded(message)

    @contextmanager
    def step(self, title: str):
        set_step(self.store.id, title)
        started = time.monotonic()
        try:
            yield
        except BaseException as exc:
            record_event(
                self.store.id, c.EVENT_WARNING, f"{title} stopped: {_describe(exc)}", step=title,
                duration_ms=int((time.monotonic() - started) * 1000), actor=ACTOR,
                reason=getattr(exc, "reason", ""),
            )
            raise
        record_event(
            self.store.id, c.EVENT_STEP, title, step=title,
            duration_ms=int((time.monotonic() - started) * 1000), actor=ACTOR, touch=False,
        )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, errors.ProvisioningError):
        return exc.message
    if isinstance(exc, errors.Cancelled):
        return "the store is being deleted"
    if isinstance(exc, SoftTimeLimitExceeded):
        return "the operation ran out of time"
    return exc.__class__.__name__


def _worker_id(task: Task) -> str:
    return (task.request.id or uuid.uuid4().hex)[:64]


# -- provisioning, upgrade, rollback -----------------------------------------
OPERATION_LIMITS = dict(
    soft_time_limit=settings.STORE_PROVISION_TIMEOUT + DEADLINE_MARGIN,
    time_limit=settings.STORE_PROVISION_TIMEOUT + DEADLINE_MARGIN + 60,
)


@shared_task(bind=True, base=StoreTask, **OPERATION_LIMITS)
def provision_store(self: Task, store_id: str) -> str:
    return _run(self, store_id, c.OP_PROVISION)


@shared_task(bind=True, base=StoreTask, **OPERATION_LIMITS)
def upgrade_store(self: Task, store_id: str) -> str:
    return _run(self, store_id, c.OP_UPGRADE)


@shared_task(bind=True, base=StoreTask, **OPERATION_LIMITS)
def rollback_store(self: Task, store_id: str) -> str:
    return _run(self, store_id, c.OP_ROLLBACK)


def _entry_states(kind: str) -> set[str]:
    state = c.OPERATION_STATES[kind]
    return {c.REQUESTED, state} if kind == c.OP_PROVISION else {state}


def _run(task: Task, store_id: str, kind: str) -> str:
    with log_context(store=store_id, operation=kind, task_id=task.request.id):
        return _run_operation(task, store_id, kind)


def _run_operation(task: Task, store_id: str, kind: str) -> str:
    """Run one provision/upgrade/rollback attempt under the store's lease."""
    worker = _worker_id(task)
    entry = _entry_states(kind)
    store = Store.objects.filter(pk=store_id).first()
    if store is None or store.status not in entry:
        return "nothing to do"
    if not lease.acquire(store_id, worker, entry):
        return "another worker holds the store"
    op = Operation(store, worker, kind, cancel_on_delete=True)
    try:
        _start(store, kind)
        store.refresh_from_db()
        if store.status == c.DELETING:
            raise errors.Cancelled()  # deleted between our read and our start
        if store.status != c.OPERATION_STATES[kind]:
            return "nothing to do"  # force-failed by an operator meanwhile
        if kind == c.OP_ROLLBACK:
            _rollback(op)
        else:
            _install(op)
        return c.READY
    except errors.Cancelled:
        record_event(store_id, c.EVENT_INFO, f"{kind.capitalize()} stopped: the store is being "
                     "deleted.", actor=ACTOR)
        lease.release(store_id, worker)
        dispatch(store_id, c.OP_DELETE)
        return "cancelled"
    except errors.LeaseLost:
        return "lease lost"
    except errors.ProvisioningError as exc:
        return _retry_or_fail(task, op, exc)
    except SoftTimeLimitExceeded:
        _fail(op, errors.TimedOut(f"The {kind} ran out of time."))
        return c.FAILED
    except Exception as exc:
        log.exception("store=%s %s crashed", store_id, kind, extra={"store": store_id})
        _fail(op, errors.ProvisioningError(f"Unexpected error: {exc.__class__.__name__}"))
        return c.FAILED
    finally:
        lease.release(store_id, worker)


def _start(store: Store, kind: str) -> None:
    """First pickup starts the clock; a resumed operation keeps its deadline."""
    now = timezone.now()
    budget = timedelta(seconds=settings.STORE_PROVISION_TIMEOUT + DEADLINE_MARGIN)
    if store.status == c.REQUESTED:
        transition(
            store.id, c.PROVISIONING, expect={c.REQUESTED}, actor=ACTOR,
            message="A worker picked up the store.",
            operation=c.OP_PROVISION, started_at=now, attempt=F("attempt") + 1,
            deadline_at=now + budget,
        )
    elif store.started_at is None:
        Store.objects.filter(pk=store.id).update(
            started_at=now, deadline_at=now + budget, attempt=F("attempt") + 1
        )
        record_event(store.id, c.EVENT_INFO, f"A worker picked up the {kind}.", actor=ACTOR)
    else:
        record_event(store.id, c.EVENT_INFO,
                     f"Resuming the {kind}: the previous worker stopped before finishing.",
                     actor=ACTOR)


def _install(op: Operation) -> None:
    """Provision or upgrade: converge the release on the current chart."""
    store = op.store
    engine = get_engine(store.engine)
    creds = _credentials(store, engine)
    helm_client = helm.Helm(store.id, secrets=creds.values(), tick=op.tick)

    with op.step("Preparing namespace"):
        kube.ensure_namespace(store)
    with op.step("Storing credentials"):
        kube.ensure_secret(store, SECRET_NAME, creds)
    _recover_release(op, helm_client)

    values = engine.values(store)
    title = "Installing chart" if op.kind == c.OP_PROVISION else (
        f"Upgrading to chart {engine.chart_version}")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix=f"{store.id}-") as values_file:
        yaml.safe_dump(values, values_file)
        values_file.flush()
        files = [str(engine.profile_values), values_file.name]
        with op.step(title), lease.helm_slot(tick=op.tick):
            lease.renew(store.id, op.worker)  # checked again right before helm runs
            op.watch_quota = True
            release = helm_client.upgrade_install(
                store.release, str(engine.chart_path), store.namespace, files,
                timeout=_helm_timeout(store),
            )
            op.watch_quota = False

    _check_storefront(op)
    chart_meta = release.get("chart", {}).get("metadata", {})
    _finish_ready(op, chart_version=chart_meta.get("version", ""),
                  helm_revision=release.get("version"))


def _rollback(op: Operation) -> None:
    store = op.store
    helm_client = helm.Helm(store.id, tick=op.tick)
    _recover_release(op, helm_client)
    revision = store.target_revision
    with op.step(f"Rolling back to revision {revision}"), lease.helm_slot(tick=op.tick):
        lease.renew(store.id, op.worker)
        helm_client.rollback(store.release, store.namespace, revision,
                             timeout=_helm_timeout(store))
    status = helm_client.status(store.release, store.namespace) or {}
    _check_storefront(op)
    chart_meta = status.get("chart", {}).get("metadata", {})
    _finish_ready(op, chart_version=chart_meta.get("version", store.chart_version),
                  helm_revision=status.get("version"), target_revision=None)


def _check_storefront(op: Operation) -> None:
    store = op.store
    with op.step("Waiting for the storefront"):
        ok, detail = probe.wait_for_storefront(
            store.storefront_url, settings.STORE_READY_PROBE_TIMEOUT, tick=op.tick
        )
        if not ok:
            raise errors.StorefrontDown(
                f"The storefront at {store.storefront_url} did not answer ({detail})."
            )


def _finish_ready(op: Operation, **fields) -> None:
    store = op.store
    messages = {c.OP_PROVISION: "The store is ready.", c.OP_UPGRADE: "The upgrade is done.",
                c.OP_ROLLBACK: "The rollback is done."}
    now = timezone.now()
    if op.kind == c.OP_PROVISION:
        fields["ready_at"] = now
    if transition(
        store.id, c.READY, expect={c.OPERATION_STATES[op.kind]}, actor=ACTOR,
        message=messages[op.kind], current_step="", deadline_at=None, started_at=None,
        health_checked_at=now, **fields,
    ):
        metrics.observe_operation(op.kind, store.engine, "ready", time.monotonic() - op.started)


def _helm_timeout(store: Store) -> int:
    """helm's --timeout: what is left of the deadline, less our own margin."""
    if store.deadline_at is None:
        return settings.STORE_PROVISION_TIMEOUT
    left = (store.deadline_at - timezone.now()).total_seconds() - DEADLINE_MARGIN + 60
    floor = min(30, settings.STORE_PROVISION_TIMEOUT)
    return max(floor, min(settings.STORE_PROVISION_TIMEOUT, int(left)))


def _credentials(store: Store, engine) -> dict[str, str]:
    """Generated once per store, then always the same."""
    existing = StoreCredentials.objects.filter(store=store).first()
    if existing:
        return existing.values
    values = engine.new_credentials(store)
    obj, _ = StoreCredentials.objects.get_or_create(
        store=store, defaults={"encrypted": StoreCredentials.encrypt(values)}
    )
    return obj.values


def _recover_release(op: Operation, helm_client: helm.Helm) -> None:
    """Release a helm lock left by a process that died mid-operation.

    A release in pending-install/upgrade/rollback refuses every new
    operation ("another operation is in progress"). We hold the store's
    lease, so no live worker of ours is running helm on it: roll back to the
    last good revision, or uninstall a first install that never completed.
    """
    store = op.store
    # Read the release state where helm keeps it (its storage Secrets' labels):
    # a Kubernetes read, not a helm process, on the path of every operation.
    with op.step("Checking release state"):
        state = kube.release_status(store.namespace, store.release)
    if state not in helm.PENDING_STATES:
        return
    history = helm_client.history(store.release, store.namespace)
    good = [h["revision"] for h in history if h.get("status") in ("deployed", "superseded")]
    with op.step("Recovering a release left pending"):
        if good:
            helm_client.rollback(store.release, store.namespace, good[-1], timeout=300)
            message = (f"Release was left {state} by a stopped process; "
                       f"rolled back to revision {good[-1]}.")
        else:
            helm_client.uninstall(store.release, store.namespace, timeout=300)
            message = (f"Release was left {state} by a stopped process; "
                       "removed the unfinished install.")
    record_event(store.id, c.EVENT_WARNING, message, reason=c.REASON_RELEASE_LOCKED, actor=ACTOR)


def _retry_or_fail(task: Task, op: Operation, exc: errors.ProvisioningError) -> str:
    """Transient errors are retried with backoff until the deadline."""
    store = Store.objects.filter(pk=op.store.id).first()
    if store is None:
        return "gone"
    retries = task.request.retries
    delay = _backoff(retries)
    deadline_ok = store.deadline_at is None or (
        timezone.now() + timedelta(seconds=delay) < store.deadline_at
    )
    if exc.transient and retries < settings.STORE_TRANSIENT_RETRIES and deadline_ok:
        record_event(
            store.id, c.EVENT_WARNING,
            f"{exc.message} Retrying in {delay:.0f}s (attempt {retries + 2}).",
            reason=exc.reason, actor=ACTOR,
        )
        lease.release(store.id, op.worker)
        # The retry is a dispatch: the reconciler must not send a second one.
        Store.objects.filter(pk=store.id).update(
            dispatched_at=timezone.now() + timedelta(seconds=delay)
        )
        raise task.retry(countdown=delay)
    _fail(op, exc)
    return c.FAILED


def _fail(op: Operation, exc: errors.ProvisioningError) -> None:
    store = op.store
    details = dict(exc.details)
    if op.kind != c.OP_DELETE and exc.reason not in (
        c.REASON_CLUSTER_UNREACHABLE, c.REASON_NOT_CONFIGURED
    ):
        details["cluster"] = kube.diagnostics(store.namespace)
    expect = _entry_states(op.kind) if op.kind != c.OP_DELETE else {c.DELETING}
    if transition(
        store.id, c.FAILED, expect=expect, reason=exc.reason, message=exc.message,
        actor=ACTOR, details=details, deadline_at=None, started_at=None,
    ):
        metrics.count_failure(op.kind, store.engine, exc.reason)
        metrics.observe_operation(op.kind, store.engine, "failed", time.monotonic() - op.started)


# -- deletion ----------------------------------------------------------------
@shared_task(
    bind=True, base=StoreTask,
    soft_time_limit=settings.STORE_DELETE_TIMEOUT + DEADLINE_MARGIN,
    time_limit=settings.STORE_DELETE_TIMEOUT + DEADLINE_MARGIN + 60,
)
def delete_store(self: Task, store_id: str) -> str:
    with log_context(store=store_id, operation=c.OP_DELETE, task_id=self.request.id):
        return _run_delete(self, store_id)


def _run_delete(self: Task, store_id: str) -> str:
    worker = _worker_id(self)
    store = Store.objects.filter(pk=store_id).first()
    if store is None or store.status != c.DELETING:
        return "nothing to do"
    if not lease.acquire(store_id, worker, {c.DELETING}):
        # A provisioning worker still holds the store; its heartbeat sees the
        # deletion within seconds and lets go.
        raise self.retry(countdown=1, max_retries=600)
    op = Operation(store, worker, c.OP_DELETE)
    try:
        if store.started_at is None or store.operation != c.OP_DELETE:
            now = timezone.now()
            budget = timedelta(seconds=settings.STORE_DELETE_TIMEOUT + DEADLINE_MARGIN)
            Store.objects.filter(pk=store_id).update(
                operation=c.OP_DELETE, started_at=now, deadline_at=now + budget
            )
            store.refresh_from_db()
        _delete(op)
        return c.DELETED
    except errors.LeaseLost:
        return "lease lost"
    except errors.ProvisioningError as exc:
        return _retry_or_fail(self, op, exc)
    except SoftTimeLimitExceeded:
        _fail(op, errors.TimedOut("Deletion ran out of time."))
        return c.FAILED
    except Exception as exc:
        log.exception("store=%s deletion crashed", store_id, extra={"store": store_id})
        _fail(op, errors.ProvisioningError(f"Unexpected error: {exc.__class__.__name__}"))
        return c.FAILED
    finally:
        lease.release(store_id, worker)


def _delete(op: Operation) -> None:
    store = op.store
    helm_client = helm.Helm(store.id, tick=op.tick)
    namespace_there = kube.namespace_state(store.namespace) is not None
    if namespace_there:
        with op.step("Uninstalling release"), lease.helm_slot(tick=op.tick):
            lease.renew(store.id, op.worker)
            removed = helm_client.uninstall(store.release, store.namespace, timeout=120)
        if not removed:
            record_event(store.id, c.EVENT_INFO, "There was no release to uninstall.", actor=ACTOR)
        with op.step("Deleting volumes"):
            kube.delete_volumes(store)
        with op.step("Deleting namespace"):
            kube.delete_namespace(store.namespace, store.id)
    with op.step("Waiting for the namespace to go"):
        _wait_namespace_gone(op)
    if transition(
        store.id, c.DELETED, expect={c.DELETING}, actor=ACTOR, message="The store was deleted.",
        deleted_at=timezone.now(), deadline_at=None, started_at=None,
    ):
        StoreCredentials.objects.filter(store_id=store.id).delete()
        metrics.observe_operation(c.OP_DELETE, store.engine, "deleted",
                                  time.monotonic() - op.started)


def _wait_namespace_gone(op: Operation) -> None:
    store = op.store
    deadline = time.monotonic() + settings.STORE_NAMESPACE_WAIT
    delay = 0.05
    while True:
        state = kube.namespace_state(store.namespace)
        if state is None:
            return
        if time.monotonic() > deadline:
            holders = state["conditions"] or [{"message": f"finalizers {state['finalizers']}"}]
            raise errors.NamespaceStuck(
                f"Namespace {store.namespace} is stuck {state['phase']}: "
                + "; ".join(h["message"] for h in holders),
                details={"namespace": state},
            )
        op.tick()
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


# -- dispatch and reconciliation --------------------------------------------
TASKS = {c.OP_PROVISION: provision_store, c.OP_DELETE: delete_store,
         c.OP_UPGRADE: upgrade_store, c.OP_ROLLBACK: rollback_store}


def dispatch(store_id: str, operation: str) -> bool:
    """Publish the task for a store. Never raises: if the broker is down,
    the reconciler publishes it later (the request is already persisted)."""
    Store.objects.filter(pk=store_id).update(dispatched_at=timezone.now())
    try:
        TASKS[operation].apply_async(args=[store_id], retry=False)
        return True
    except Exception as exc:  # kombu raises a variety of connection errors
        log.warning("store=%s could not publish %s, the reconciler will: %s",
                    store_id, operation, exc, extra={"store": store_id})
        return False


def _operation_of(store: Store) -> str:
    """The operation a busy state stands for."""
    if store.status == c.REQUESTED:
        return c.OP_PROVISION
    return next(op for op, state in c.OPERATION_STATES.items() if state == store.status)


@shared_task(ignore_result=True)
def reconcile() -> dict:
    """Find accepted work that no live worker is doing and (re)start it.

    - requested stores never picked up (broker was down, message lost);
    - provisioning/deleting stores whose worker's lease expired (the worker
      died): resume them, they are idempotent;
    - operations past their deadline: fail them with a reason.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.STORE_RECONCILE_INTERVAL)
    counts = {"dispatched": 0, "resumed": 0, "failed": 0}
    free = Store.objects.filter(lease_expires_at__isnull=True) | Store.objects.filter(
        lease_expires_at__lt=now
    )

    for store in free.filter(status__in=list(c.BUSY_STATES)).only(
        "id", "status", "engine", "dispatched_at", "deadline_at", "operation", "started_at"
    ):
        operation = _operation_of(store)
        if store.deadline_at and store.deadline_at < now:
            error = errors.NamespaceStuck if operation == c.OP_DELETE else errors.TimedOut
            op = Operation(store, "reconciler", operation)
            _fail(op, error(f"The {operation} passed its deadline without finishing."))
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
        if transition(store_id, c.DELETING, expect={c.FAILED}, actor="reconciler",
                      message="Retrying the deletion.", deadline_at=None):
            dispatch(store_id, c.OP_DELETE)
            counts["resumed"] += 1
    if any(counts.values()):
        log.info("reconcile: %s", counts)
    return counts


@shared_task(ignore_result=True)
def advance_fleet_upgrade(run_id: int, user_id: int | None = None) -> str:
    """Drive a fleet upgrade started from the admin: one step, then again
    in a few seconds, until it is done or stopped."""
    from django.contrib.auth import get_user_model

    from provisioning import fleet
    from stores.models import FleetUpgrade
    from stores.services import Actor

    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    run = fleet.advance(FleetUpgrade.objects.get(pk=run_id), Actor(user, via="admin"))
    if run.status == FleetUpgrade.RUNNING:
        advance_fleet_upgrade.apply_async(args=[run_id, user_id], countdown=5)
    return run.status
