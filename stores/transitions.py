"""The one place a store's status and its operation's bookkeeping change.

Each status change is a conditional update checked against the table in
``stores.constants.TRANSITIONS`` and writes an append-only event row. Callers
learn from the return value whether they won: a worker that finds its store
already ``deleting`` stops instead of overwriting the user's decision.

An operation's bookkeeping (which operation, its clock, the worker's lease,
the step on screen) lives on the store row next to its status and changes
with it, here only:

- ``request_operation``: someone asks; the store enters the operation's busy
  state with a deadline that covers the wait for a worker;
- ``start_operation``: the worker holding the lease starts the clock, or
  resumes an operation a previous attempt began;
- ``defer_retry``: the worker lets go until a retry a few seconds later;
- ``transition`` into any state that is not busy ends the operation: the
  clock, the lease and the step are cleared in the same update.

A worker passes ``owner`` (its lease) to every write that ends its operation,
so a worker whose lease was taken over (an operator force-failed the store,
or it stalled past its lease) cannot overwrite what happened since.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from stores import constants as c
from stores.models import Store, StoreEvent

log = logging.getLogger(__name__)

# What an operation keeps on the store row while it runs; a store that is not
# busy has none of it.
OPERATION_CLEARED = {
    "started_at": None,
    "deadline_at": None,
    "lease_owner": "",
    "lease_expires_at": None,
    "current_step": "",
    "step_started_at": None,
    # The request's choice to go on without a backup first (issue 12).
    "skip_backup": False,
}


def transition(
    store_id: str,
    to: str,
    *,
    expect: frozenset[str] | set[str] | None = None,
    owner: str | None = None,
    reason: str = "",
    message: str = "",
    actor: str = "",
    details: dict | None = None,
    **fields,
) -> bool:
    """Move a store to ``to`` if that is legal from where it is now.

    ``expect`` narrows the states we are willing to move from; ``owner``
    requires the caller to hold the store's lease. Returns False (and changes
    nothing) otherwise. Extra ``fields`` are written in the same update.
    Moving to a state that is not busy ends the operation in flight.
    """
    now = timezone.now()
    with transaction.atomic():
        row = (
            Store.objects.select_for_update().filter(pk=store_id)
            .values("status", "lease_owner").first()
        )
        if row is None or to not in c.TRANSITIONS[row["status"]]:
            return False
        current = row["status"]
        if expect is not None and current not in expect:
            return False
        if owner is not None and row["lease_owner"] != owner:
            return False
        if to not in c.BUSY_STATES:
            fields = {**OPERATION_CLEARED, **fields}
        fields.setdefault("diagnostics", (details or {}) if to == c.FAILED else {})
        Store.objects.filter(pk=store_id).update(
            status=to, status_reason=reason, status_message=message, updated_at=now, **fields
        )
        StoreEvent.objects.create(
            store_id=store_id, created_at=now, kind=c.EVENT_STATUS, status_from=current,
            status_to=to, reason=reason, message=message, actor=actor, details=details or {},
        )
    log.info(
        "store=%s status %s -> %s reason=%s", store_id, current, to, reason or "-",
        extra={"store": store_id, "status": to, "reason": reason},
    )
    return True


def request_operation(
    store_id: str, operation: str, *, expect, actor: str, message: str, deadline: datetime,
    **fields,
) -> bool:
    """Ask for an operation: the store enters its busy state with a fresh
    clock (started by the worker that picks it up) and ``deadline``, which
    covers the wait for a worker too."""
    return transition(
        store_id, c.REQUEST_STATES[operation], expect=expect, actor=actor, message=message,
        operation=operation, deadline_at=deadline, started_at=None, **fields,
    )


def start_operation(
    store_id: str, owner: str, operation: str, *, deadline: datetime, actor: str
) -> bool:
    """The worker holding the lease starts its operation.

    A first pickup starts the clock (a fresh ``deadline``) and counts an
    attempt; a pickup of an operation already started (a retry after a
    transient error, or a resumption after a lost worker) keeps its deadline.
    Returns False when the store moved on meanwhile (deleted, force-failed)
    or the lease is no longer ours.
    """
    state = c.OPERATION_STATES[operation]
    request_state = c.REQUEST_STATES[operation]
    now = timezone.now()
    with transaction.atomic():
        row = (
            Store.objects.select_for_update().filter(pk=store_id)
            .values("status", "started_at", "lease_owner", "operation").first()
        )
        if row is None or row["lease_owner"] != owner or row["operation"] != operation:
            return False
        clock = {"started_at": now, "deadline_at": deadline, "attempt": F("attempt") + 1}
        if row["status"] == request_state != state:
            return transition(store_id, state, expect={request_state}, owner=owner, actor=actor,
                              message="A worker picked up the store.", **clock)
        if row["status"] != state:
            return False
        if row["started_at"] is None:
            Store.objects.filter(pk=store_id).update(updated_at=now, **clock)
            message = f"A worker picked up the {operation}."
        else:
            message = f"Continuing the {operation}."
        record_event(store_id, c.EVENT_INFO, message, actor=actor)
    return True


def defer_retry(store_id: str, owner: str, until: datetime) -> bool:
    """Let go of the store until a retry at ``until``. The retry counts as a
    dispatch, so the reconciler does not send a second one meanwhile."""
    return bool(
        Store.objects.filter(pk=store_id, lease_owner=owner).update(
            lease_owner="", lease_expires_at=None, dispatched_at=until
        )
    )


def record_event(
    store_id: str,
    kind: str,
    message: str,
    *,
    step: str = "",
    reason: str = "",
    duration_ms: int | None = None,
    actor: str = "",
    details: dict | None = None,
    touch: bool = True,
) -> StoreEvent:
    """Append an event. ``touch`` bumps the store's ``updated_at`` so the
    dashboard's live rows notice; a finished step needs no touch, since the
    next step or the final transition touches the store a moment later (one
    write less per step on the provisioning path, see docs/benchmarks.md)."""
    event = StoreEvent.objects.create(
        store_id=store_id, kind=kind, message=message, step=step, reason=reason,
        duration_ms=duration_ms, actor=actor, details=details or {},
    )
    if touch:
        Store.objects.filter(pk=store_id).update(updated_at=event.created_at)
    return event


def set_step(store_id: str, step: str) -> None:
    """Say which step a worker is on, for the live progress display."""
    now = timezone.now()
    Store.objects.filter(pk=store_id).update(current_step=step, step_started_at=now, updated_at=now)


def set_step_detail(store_id: str, owner: str, detail: str) -> None:
    """What a long step is waiting on (cert-manager's condition message), in
    the status message of the busy store, while this attempt holds the lease."""
    Store.objects.filter(pk=store_id, lease_owner=owner).update(
        status_message=detail, updated_at=timezone.now())
