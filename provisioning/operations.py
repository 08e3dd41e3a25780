"""The one guarded operation every store task runs through.

Whatever a worker does to a store (provision, upgrade, roll back, delete,
and every operation added since) runs as ``run(task, store_id, spec)``:

1. **Pickup.** The store must be in one of the operation's entry states and
   the worker must win its lease (``provisioning.lease``); otherwise another
   delivery of the same work is already on it, and this one does nothing.
2. **Start.** ``transitions.start_operation`` starts the clock or resumes.
3. **Body.** The operation's own function, given an ``Operation``: steps
   (each an event with its duration), a heartbeat that renews the lease and
   notices a deletion, and ``finish()``, the final transition, conditional on
   still holding the lease.
4. **Outcome.** Every way a body can end maps to one ``Outcome``:
   the store is being deleted (deletion wins), the lease was lost (someone
   else owns the store now: touch nothing), a typed error (retried with
   backoff when transient and time allows, else the store fails with its
   reason), the soft time limit, anything else (fails as an internal error).

``StoreTask`` is the Celery base class of these tasks. Its ``on_failure`` is
the last line for an exception that escapes all of the above (the database
failing while a failure is recorded): it fails the store if this attempt
still holds its lease. ``after_return`` lets go of the lease, whichever way
the attempt ended; it is the only place a finished attempt releases it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from provisioning import errors, kube, lease, metrics
from storeplatform.logging import log_context
from stores import constants as c
from stores import transitions
from stores.models import Store
from stores.transitions import record_event, set_step

log = logging.getLogger(__name__)

ACTOR = "worker"
# Work an operation does beyond helm's own timeout: chart rendering, the
# storefront probe, recovery of a stuck release.
DEADLINE_MARGIN = 180


class Outcome(StrEnum):
    DONE = "done"  # the body reached its final state
    FAILED = "failed"
    SKIPPED = "skipped"  # not in an entry state, or another worker holds it
    CANCELLED = "cancelled"  # the store is being deleted; deletion wins
    LEASE_LOST = "lease lost"  # someone else owns the store now


@dataclass(frozen=True)
class Spec:
    """How one kind of operation runs."""

    kind: str  # c.OP_*
    body: Callable[[Operation], None]
    timeout: int  # seconds the operation's own work may take
    # A deletion wins over any other operation: the heartbeat stops the body
    # when the store moves to deleting. The deletion itself is not cancelled.
    cancel_on_delete: bool = True
    # A deletion waits for a busy worker to notice it and let go; other
    # operations find the work already taken and stop.
    wait_for_lease: bool = False

    @property
    def state(self) -> str:
        return c.OPERATION_STATES[self.kind]

    @property
    def entry_states(self) -> frozenset[str]:
        return frozenset({c.REQUEST_STATES[self.kind], self.state})

    @property
    def budget(self) -> timedelta:
        return timedelta(seconds=self.timeout + DEADLINE_MARGIN)

    def task_limits(self) -> dict:
        """Celery's soft/hard time limits, a margin past the deadline."""
        soft = self.timeout + DEADLINE_MARGIN
        return {"soft_time_limit": soft, "time_limit": soft + 60}


@dataclass
class Operation:
    """Per-run state of one attempt at an operation."""

    store: Store
    owner: str  # the lease this attempt holds
    spec: Spec
    watch_quota: bool = False
    started: float = field(default_factory=time.monotonic)
    # The error a step already wrote into the timeline, so the retry that
    # follows does not say it twice.
    reported: BaseException | None = None
    _last_beat: float = 0.0
    _last_quota_check: float = 0.0

    @property
    def kind(self) -> str:
        return self.spec.kind

    def tick(self) -> None:
        """Heartbeat while helm runs: renew the lease, notice a deletion,
        fail early on a quota rejection the namespace's events already show."""
        now = time.monotonic()
        if now - self._last_beat >= settings.STORE_HEARTBEAT_SECONDS:
            self._last_beat = now
            lease.renew(self.store.id, self.owner)
            if self.spec.cancel_on_delete and Store.objects.filter(
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
        """One step: shown live while it runs, an event with its duration
        when it ends (a warning saying why when it does not)."""
        set_step(self.store.id, title)
        started = time.monotonic()
        try:
            yield
        except errors.LeaseLost:
            raise  # the store is someone else's now: write nothing more about it
        except BaseException as exc:
            record_event(
                self.store.id, c.EVENT_WARNING, f"{title} stopped: {_describe(exc)}", step=title,
                duration_ms=int((time.monotonic() - started) * 1000), actor=ACTOR,
                reason=getattr(exc, "reason", ""),
            )
            self.reported = exc
            raise
        record_event(
            self.store.id, c.EVENT_STEP, title, step=title,
            duration_ms=int((time.monotonic() - started) * 1000), actor=ACTOR, touch=False,
        )

    def finish(self, to: str, *, message: str, reason: str = "", details: dict | None = None,
               **fields) -> bool:
        """The operation's final transition, if this attempt still holds the
        lease and the store is still in the operation's state."""
        done = transitions.transition(
            self.store.id, to, expect={self.spec.state}, owner=self.owner, reason=reason,
            message=message, actor=ACTOR, details=details, **fields,
        )
        if done:
            metrics.observe_operation(self.kind, self.store.engine, to,
                                      time.monotonic() - self.started)
        return done

    def fail(self, exc: errors.ProvisioningError) -> None:
        """End the operation as failed, with the error's reason and, for
        work inside the cluster, what the namespace shows."""
        details = dict(exc.details)
        if self.kind != c.OP_DELETE and exc.reason not in (
            c.REASON_CLUSTER_UNREACHABLE, c.REASON_NOT_CONFIGURED
        ):
            details["cluster"] = kube.diagnostics(self.store.namespace)
        if self.finish(c.FAILED, reason=exc.reason, message=exc.message, details=details):
            metrics.count_failure(self.kind, self.store.engine, exc.reason)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, errors.ProvisioningError):
        return exc.message
    if isinstance(exc, errors.Cancelled):
        return "the store is being deleted."
    if isinstance(exc, SoftTimeLimitExceeded):
        return "the operation ran out of time."
    return f"an unexpected error ({exc.__class__.__name__})."


def unexpected(kind: str, store_id: str, exc: BaseException) -> errors.ProvisioningError:
    """The failure of an exception we did not expect: a sentence for the
    owner, the exception's own words (store credentials masked) as details;
    the traceback is in the worker's log."""
    from provisioning.helm import mask
    from stores.models import StoreCredentials

    raw = f"{exc.__class__.__name__}: {exc}"
    try:
        creds = StoreCredentials.objects.filter(store_id=store_id).first()
        details = {"raw": mask(raw, creds.values.values() if creds else ())[:4000]}
    except Exception:  # the database itself may be what failed: no words, no risk
        details = {}
    return errors.ProvisioningError(
        f"The {kind} stopped on an unexpected error ({exc.__class__.__name__}).",
        details=details)


def lease_owner(task: Task) -> str:
    """The lease name of one attempt: the task id and its retry count, so an
    attempt's cleanup can never release the lease of the retry after it."""
    return f"{task.request.id}:{task.request.retries}"[:64]


class StoreTask(Task):
    """Base of every store operation task (see the module docstring)."""

    abstract = True
    acks_late = True
    reject_on_worker_lost = True
    max_retries = None  # bounded by the store's deadline, see _retry_or_fail

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        store_id = _store_id(args, kwargs)
        log.error("store=%s task %s crashed: %r", store_id, self.name, exc,
                  extra={"store": store_id, "task_id": task_id})
        try:
            # The crash may have been the database connection itself.
            close_old_connections()
            failure = unexpected("operation", store_id, exc)
            transitions.transition(
                store_id, c.FAILED, expect=c.BUSY_STATES, owner=lease_owner(self),
                reason=failure.reason, message=failure.message, details=failure.details,
                actor=ACTOR,
            )
        except Exception:
            # The reconciler fails the store at its deadline.
            log.exception("store=%s could not record the crash", store_id)

    def after_return(self, status, retval, task_id, args, kwargs, einfo):
        lease.release(_store_id(args, kwargs), lease_owner(self))


def _store_id(args, kwargs) -> str:
    return args[0] if args else kwargs.get("store_id", "")


def run(task: Task, store_id: str, spec: Spec) -> str:
    """Run one attempt at an operation under the store's lease."""
    with log_context(store=store_id, operation=spec.kind, task_id=task.request.id):
        return _run(task, store_id, spec)


def _run(task: Task, store_id: str, spec: Spec) -> Outcome:
    owner = lease_owner(task)
    store = Store.objects.filter(pk=store_id).first()
    if store is None or store.status not in spec.entry_states:
        return Outcome.SKIPPED
    if not lease.acquire(store_id, owner, spec.entry_states):
        if spec.wait_for_lease:
            # A worker busy on the store sees the deletion within a heartbeat.
            raise task.retry(countdown=1, max_retries=600)
        return Outcome.SKIPPED
    op = Operation(store, owner, spec)
    try:
        if not transitions.start_operation(store_id, owner, spec.kind,
                                           deadline=timezone.now() + spec.budget, actor=ACTOR):
            return Outcome.SKIPPED  # force-failed or deleted between our read and our start
        store.refresh_from_db()
        if spec.cancel_on_delete and store.status == c.DELETING:
            raise errors.Cancelled()
        spec.body(op)
        return Outcome.DONE
    except errors.Cancelled:
        record_event(store_id, c.EVENT_INFO, f"{spec.kind.capitalize()} stopped: the store is "
                     "being deleted.", actor=ACTOR)
        return Outcome.CANCELLED
    except errors.LeaseLost:
        return Outcome.LEASE_LOST
    except errors.ProvisioningError as exc:
        return _retry_or_fail(task, op, exc)
    except SoftTimeLimitExceeded:
        op.fail(errors.TimedOut(f"The {spec.kind} ran out of time."))
        return Outcome.FAILED
    except Exception as exc:
        log.exception("store=%s %s crashed", store_id, spec.kind, extra={"store": store_id})
        op.fail(unexpected(spec.kind, store_id, exc))
        return Outcome.FAILED


def _in(seconds: float) -> str:
    return "in a moment" if seconds < 1 else f"in {seconds:.0f} s"


def _backoff(retries: int) -> float:
    return settings.STORE_RETRY_BACKOFF * (2**retries)


def _retry_or_fail(task: Task, op: Operation, exc: errors.ProvisioningError) -> Outcome:
    """Transient errors are retried with backoff until the deadline."""
    store = Store.objects.filter(pk=op.store.id).only("deadline_at").first()
    if store is None:
        return Outcome.SKIPPED
    retries = task.request.retries
    delay = _backoff(retries)
    retry_at = timezone.now() + timedelta(seconds=delay)
    in_time = store.deadline_at is None or retry_at < store.deadline_at
    if not (exc.transient and retries < settings.STORE_TRANSIENT_RETRIES and in_time):
        op.fail(exc)
        return Outcome.FAILED
    # The step that stopped has said why already (as a warning); this says
    # what happens next, which is routine.
    again = (f"Trying again {_in(delay)} (attempt {retries + 2} of "
             f"{settings.STORE_TRANSIENT_RETRIES + 1}).")
    record_event(
        op.store.id, c.EVENT_INFO, again if op.reported is exc else f"{exc.message} {again}",
        reason=exc.reason, actor=ACTOR,
    )
    # Let go before the retry is published: it may run before we return.
    if not transitions.defer_retry(op.store.id, op.owner, retry_at):
        return Outcome.LEASE_LOST
    raise task.retry(countdown=delay)
