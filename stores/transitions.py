"""The one place a store's status changes.

Each change is a conditional update checked against the table in
``stores.constants.TRANSITIONS`` and writes an append-only event row. Callers
learn from the return value whether they won: a worker that finds its store
already ``deleting`` stops instead of overwriting the user's decision.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from stores import constants as c
from stores.models import Store, StoreEvent

log = logging.getLogger(__name__)


class IllegalTransition(Exception):
    pass


def transition(
    store_id: str,
    to: str,
    *,
    expect: frozenset[str] | set[str] | None = None,
    reason: str = "",
    message: str = "",
    actor: str = "",
    details: dict | None = None,
    **fields,
) -> bool:
    """Move a store to ``to`` if that is legal from where it is now.

    ``expect`` narrows the states we are willing to move from. Returns False
    (and changes nothing) when the store is elsewhere. Extra ``fields`` are
    written in the same update (``ready_at``, ``diagnostics``...).
    """
    now = timezone.now()
    with transaction.atomic():
        current = (
            Store.objects.select_for_update().filter(pk=store_id).values_list("status", flat=True)
        ).first()
        if current is None or to not in c.TRANSITIONS[current]:
            return False
        if expect is not None and current not in expect:
            return False
        fields.setdefault("diagnostics", (details or {}) if to == c.FAILED else {})
        if to in (c.READY, c.DELETED, c.FAILED):
            fields.setdefault("current_step", "")
            fields.setdefault("step_started_at", None)
        updated = Store.objects.filter(pk=store_id, status=current).update(
            status=to, status_reason=reason, status_message=message, updated_at=now, **fields
        )
        if not updated:  # pragma: no cover - the row is locked above
            return False
        StoreEvent.objects.create(
            store_id=store_id,
            created_at=now,
            kind=c.EVENT_STATUS,
            status_from=current,
            status_to=to,
            reason=reason,
            message=message,
            actor=actor,
            details=details or {},
        )
    log.info(
        "store=%s status %s -> %s reason=%s", store_id, current, to, reason or "-",
        extra={"store": store_id, "status": to, "reason": reason},
    )
    return True


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
