"""The functions that start work on stores.

The web pages, the API and the admin all call these, so a rule (quota,
legal states, audit) is written once. Each persists the request first and
publishes the task only after the transaction commits: a broker that is
down loses nothing, the reconciler publishes it later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from provisioning import tasks
from provisioning.engines import ENGINES, EngineUnavailable
from stores import constants as c
from stores.models import AuditEntry, Quota, Store, StoreEvent
from stores.naming import InvalidName, host_for, unique_slug, validate_name
from stores.transitions import transition


class StoreRequestError(Exception):
    """A request we refuse; ``field`` names the input to fix."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


@dataclass
class Actor:
    """Who asks, from where, and through which door (web, api, admin)."""

    user: object
    ip: str | None = None
    via: str = "web"

    @property
    def label(self) -> str:
        return f"{self.via}:{self.user.get_username()}"


def audit(actor: Actor, action: str, store_id: str = "", **details) -> None:
    AuditEntry.objects.create(
        actor=actor.user, actor_name=actor.user.get_username(), action=action,
        store_id=store_id, ip=actor.ip, via=actor.via, details=details,
    )


def max_stores_for(user) -> int:
    quota = Quota.objects.filter(user=user).values_list("max_stores", flat=True).first()
    return settings.STORE_MAX_PER_USER if quota is None else quota


def _on_commit_dispatch(store_id: str, operation: str) -> None:
    transaction.on_commit(lambda: tasks.dispatch(store_id, operation))


def create_store(actor: Actor, name: object, engine: object) -> Store:
    name = _clean_name(name)
    if engine not in ENGINES:
        raise StoreRequestError(
            f"Unknown engine {engine!r}; choose one of: {', '.join(sorted(ENGINES))}.",
            field="engine",
        )
    try:
        ENGINES[engine].check_available()
    except EngineUnavailable as exc:
        raise StoreRequestError(str(exc), field="engine") from exc

    user_model = get_user_model()
    with transaction.atomic():
        # Lock the owner's row: concurrent creates by one user queue here, so
        # the live-store count below cannot be raced past the quota.
        user_model.objects.select_for_update().filter(pk=actor.user.pk).first()
        live = Store.objects.filter(owner=actor.user, status__in=list(c.LIVE_STATES)).count()
        limit = max_stores_for(actor.user)
        if live >= limit:
            raise StoreRequestError(
                f"You already have {live} of your {limit} allowed stores. "
                "Delete one before creating another.",
                status=409,
            )
        slug = unique_slug(
            name, lambda s: Store.objects.filter(slug=s).exclude(status=c.DELETED).exists()
        )
        now = timezone.now()
        try:
            with transaction.atomic():
                store = Store.objects.create(
                    owner=actor.user, name=name, slug=slug, host=host_for(slug), engine=engine,
                    operation=c.OP_PROVISION, created_at=now,
                    deadline_at=now + timedelta(seconds=settings.STORE_PROVISION_TIMEOUT + 600),
                )
        except IntegrityError as exc:
            # Another user's store took the slug between our check and insert.
            raise StoreRequestError(
                "That name was just taken; please try again.", field="name", status=409
            ) from exc
        StoreEvent.objects.create(
            store=store, created_at=now, kind=c.EVENT_STATUS, status_to=c.REQUESTED,
            message=f"{ENGINES[engine].title} store requested.", actor=actor.label,
        )
        audit(actor, "create", store.id, name=name, engine=engine)
        _on_commit_dispatch(store.id, c.OP_PROVISION)
    return store


def _clean_name(name: object) -> str:
    try:
        return validate_name(name)
    except InvalidName as exc:
        raise StoreRequestError(str(exc), field="name") from exc


def retry_store(actor: Actor, store: Store) -> Store:
    """Start again what failed: the provisioning, or the deletion."""
    if store.status not in c.RETRYABLE_STATES:
        raise StoreRequestError(
            f"Only failed stores can be retried; this one is {store.status}.", status=409
        )
    if store.operation == c.OP_DELETE:
        to, operation, message = c.DELETING, c.OP_DELETE, "Deletion retried."
    else:
        to, operation, message = c.REQUESTED, c.OP_PROVISION, "Provisioning retried."
    with transaction.atomic():
        deadline = timezone.now() + timedelta(seconds=settings.STORE_PROVISION_TIMEOUT + 600)
        if not transition(store.id, to, expect={c.FAILED}, actor=actor.label, message=message,
                          deadline_at=deadline if to == c.REQUESTED else None):
            raise StoreRequestError("The store changed state; reload and try again.", status=409)
        audit(actor, "retry", store.id)
        _on_commit_dispatch(store.id, operation)
    store.refresh_from_db()
    return store


def delete_store(actor: Actor, store: Store) -> Store:
    """Delete a store in any live state; deleting a provisioning store wins."""
    if store.status == c.DELETING:
        return store  # already under way: deleting twice is the same request
    if store.status not in c.DELETABLE_STATES:
        raise StoreRequestError(f"The store is already {store.status}.", status=409)
    with transaction.atomic():
        if not transition(store.id, c.DELETING, expect=c.DELETABLE_STATES, actor=actor.label,
                          message="Deletion requested.", operation=c.OP_DELETE,
                          deadline_at=None):
            raise StoreRequestError("The store changed state; reload and try again.", status=409)
        audit(actor, "delete", store.id)
        _on_commit_dispatch(store.id, c.OP_DELETE)
    store.refresh_from_db()
    return store


def force_fail(actor: Actor, store: Store, message: str = "") -> bool:
    """Operator action for a store stuck in a busy state."""
    with transaction.atomic():
        done = transition(
            store.id, c.FAILED, expect=c.BUSY_STATES, actor=actor.label,
            reason=c.REASON_FORCE_FAILED,
            message=message or f"Marked failed by {actor.user.get_username()}.",
            lease_owner="", lease_expires_at=None, deadline_at=None,
        )
        if done:
            audit(actor, "force_fail", store.id)
    return done


def set_quota(actor: Actor, user, max_stores: int) -> None:
    Quota.objects.update_or_create(user=user, defaults={"max_stores": max_stores})
    audit(actor, "quota", "", user=user.get_username(), max_stores=max_stores)
