"""The functions that start work on stores.

The web pages, the API and the admin all call these, so a rule (quota,
legal states, audit) is written once. Each persists the request first and
publishes the task only after the transaction commits: a broker that is
down loses nothing, the reconciler publishes it later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from provisioning import backups, tasks
from provisioning.engines import ENGINES, EngineUnavailable, get_engine
from stores import constants as c
from stores import transitions
from stores.models import (
    Account,
    AuditEntry,
    Backup,
    Quota,
    Revision,
    Store,
    StoreCredentials,
    StoreEvent,
)
from stores.naming import InvalidName, host_for, unique_slug, validate_name
from stores.permissions import is_operator

log = logging.getLogger(__name__)


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

    user: object  # None for the platform itself (management commands, beat)
    ip: str | None = None
    via: str = "web"

    @property
    def name(self) -> str:
        return self.user.get_username() if self.user is not None else "system"

    @property
    def label(self) -> str:
        return f"{self.via}:{self.name}"


def audit(actor: Actor, action: str, store_id: str = "", **details) -> None:
    AuditEntry.objects.create(
        actor=actor.user, actor_name=actor.name, action=action,
        store_id=store_id, ip=actor.ip, via=actor.via, details=details,
    )


def max_stores_for(user) -> int:
    quota = Quota.objects.filter(user=user).values_list("max_stores", flat=True).first()
    return settings.STORE_MAX_PER_USER if quota is None else quota


def _on_commit_dispatch(store_id: str, operation: str) -> None:
    transaction.on_commit(lambda: tasks.dispatch(store_id, operation))


def create_store(actor: Actor, name: object, engine: object, *,
                 from_backup: Backup | None = None) -> Store:
    """A new store of the actor's: from the warm pool when it has one,
    else built cold. ``from_backup``: a clone (issue 12), always built cold,
    then restored from the backup (provisioning/backups.py), for the
    backup's store's owner (an operator may clone someone's store for them)."""
    name = _clean_name(name)
    owner = from_backup.store.owner if from_backup and from_backup.store.owner else actor.user
    if engine not in ENGINES:
        raise StoreRequestError(
            f"Unknown engine {engine!r}; choose one of: {', '.join(sorted(ENGINES))}.",
            field="engine",
        )
    try:
        ENGINES[engine].check_available()
    except EngineUnavailable as exc:
        raise StoreRequestError(str(exc), field="engine") from exc

    _check_verified(owner)

    user_model = get_user_model()
    with transaction.atomic():
        # Lock the owner's row: concurrent creates by one user queue here, so
        # the live-store count below cannot be raced past the quota.
        user_model.objects.select_for_update().filter(pk=owner.pk).first()
        live = Store.objects.filter(owner=owner, status__in=list(c.LIVE_STATES)).count()
        limit = max_stores_for(owner)
        if live >= limit:
            mine = owner == actor.user
            who = "You already have" if mine else f"{owner.get_username()} already has"
            raise StoreRequestError(
                f"{who} {live} of {'your' if mine else 'their'} {limit} allowed stores. "
                "Delete one before creating another.",
                status=409,
            )
        slug = unique_slug(name, _slug_taken)
        claimed = None if from_backup else _claim_pooled(actor, engine, name=name, slug=slug)
        if claimed is not None:
            return claimed
        now = timezone.now()
        try:
            with transaction.atomic():
                store = Store.objects.create(
                    owner=owner, name=name, slug=slug, host=host_for(slug), engine=engine,
                    operation=c.OP_PROVISION, created_at=now,
                    deadline_at=tasks.deadline_for(c.OP_PROVISION),
                    target_backup_id=from_backup.id if from_backup else "",
                )
        except IntegrityError as exc:
            # Another user's store took the slug between our check and insert.
            raise StoreRequestError(
                "That name was just taken; please try again.", field="name", status=409
            ) from exc
        if from_backup is not None:
            _copy_credentials(from_backup.store, store)
        StoreEvent.objects.create(
            store=store, created_at=now, kind=c.EVENT_STATUS, status_to=c.REQUESTED,
            message=f"{ENGINES[engine].title} store requested." if from_backup is None else
            f"{ENGINES[engine].title} store requested: a copy of {from_backup.store.name} from "
            f"its backup {from_backup.id}.", actor=actor.label,
        )
        audit(actor, "create", store.id, name=name, engine=engine,
              **({"from_backup": from_backup.id} if from_backup else {}))
        _on_commit_dispatch(store.id, c.OP_PROVISION)
    return store


# A pooled store waiting to be claimed: running, or kept suspended by the
# pool (STORE_POOL_SUSPENDED, stores/pool.py). Ownerless stores only.
CLAIMABLE_STATES = frozenset({c.POOLED, c.SUSPENDED})


def _claim_pooled(actor: Actor, engine: str, *, name: str, slug: str) -> Store | None:
    """Take a pooled store of the engine for the new store, if one is ready
    on the current chart: it becomes the actor's under their name, slug and
    host, and a ``claim`` operation personalizes it (provisioning/claim.py).
    None when the pool has none: the caller builds the store cold.

    Runs inside create_store's transaction. ``SKIP LOCKED``: concurrent
    creates each lock a different pooled store (or none), never wait for
    one another, and never get the same one."""
    pooled = (
        Store.objects.select_for_update(skip_locked=True)
        .filter(owner__isnull=True, engine=engine, status__in=list(CLAIMABLE_STATES),
                chart_version=get_engine(engine).chart_version)
        # A running one first: a suspended one costs a resume (STORE_POOL_SUSPENDED).
        .order_by("suspended", "created_at", "id").first()
    )
    if pooled is None:
        return None
    title = ENGINES[engine].title
    if pooled.status == c.SUSPENDED:
        came = (f"Came from the warm pool: a {title} store built in advance and kept "
                "suspended is resumed and takes its name and address.")
    else:
        came = (f"Came from the warm pool: a {title} store built in advance takes its name "
                "and address.")
    now = timezone.now()
    try:
        with transaction.atomic():
            # The store is someone's from now on, named as a cold one would be.
            Store.objects.filter(pk=pooled.pk).update(
                owner=actor.user, name=name, slug=slug, host=host_for(slug), created_at=now,
                ready_at=None)
    except IntegrityError as exc:
        raise StoreRequestError(
            "That name was just taken; please try again.", field="name", status=409
        ) from exc
    # The claim's one helm upgrade resumes a suspended store: its values
    # switch goes off with the rest of its real values (provisioning/claim.py).
    if not transitions.request_operation(
        pooled.pk, c.OP_CLAIM, expect=CLAIMABLE_STATES, actor=actor.label, message=came,
        deadline=tasks.deadline_for(c.OP_CLAIM), suspended=False,
    ):  # pragma: no cover - the row is locked and was pooled: nothing can move it
        raise StoreRequestError("The store could not be created; please try again.", status=409)
    audit(actor, "create", pooled.pk, name=name, engine=engine, pooled=True)
    _on_commit_dispatch(pooled.pk, c.OP_CLAIM)
    transaction.on_commit(_refill_pool)
    return Store.objects.get(pk=pooled.pk)


def _refill_pool() -> None:
    """Top the warm pool up now rather than at beat's next run. Never
    raises: a broker that is down only leaves it to beat."""
    from stores import pool  # stores.pool builds on this module

    try:
        pool.maintain.apply_async(queue=settings.STORE_POOL_QUEUE, retry=False)
    except Exception as exc:  # kombu raises a variety of connection errors
        log.warning("could not publish the warm pool's refill, beat will: %s", exc)


def _slug_taken(slug: str) -> bool:
    return Store.objects.filter(slug=slug).exclude(status=c.DELETED).exists()


def address_for(name: object) -> str:
    """The storefront address a store of this name would get now: its
    name's slug, numbered (-2, -3...) when taken. A preview only: another
    store created meanwhile may take it first."""
    slug = unique_slug(_clean_name(name), _slug_taken)
    return f"{settings.STORE_SCHEME}://{host_for(slug)}/"


def _check_verified(user) -> None:
    """Someone who signed up in open mode verifies their address before
    their first store (accounts created by an operator have nothing to verify)."""
    if user is not None and Account.objects.filter(
            user=user, verification_required=True, email_verified_at__isnull=True).exists():
        raise StoreRequestError(
            f"Verify your e-mail address first: open the link we sent to {user.email}, "
            "or send a new one from your account page.", status=403)


def _clean_name(name: object) -> str:
    try:
        return validate_name(name)
    except InvalidName as exc:
        raise StoreRequestError(str(exc), field="name") from exc


def _request(actor: Actor, store: Store, operation: str, action: str,
             expect, message: str, **fields) -> Store:
    """Persist a request (state + event + audit), dispatch after commit."""
    with transaction.atomic():
        if not transitions.request_operation(
            store.id, operation, expect=expect, actor=actor.label, message=message,
            deadline=tasks.deadline_for(operation), **fields,
        ):
            store.refresh_from_db()
            raise StoreRequestError(
                f"The store is {store.status} now, so it cannot be {action}.", status=409
            )
        audit(actor, action, store.id, **{k: v for k, v in fields.items() if v is not None})
        _on_commit_dispatch(store.id, operation)
    store.refresh_from_db()
    return store


def retry_store(actor: Actor, store: Store) -> Store:
    """Start again what failed: the provisioning, deletion, upgrade or rollback."""
    if store.status not in c.RETRYABLE_STATES:
        raise StoreRequestError(
            f"Only failed stores can be retried; this one is {store.status}.", status=409
        )
    operation = store.operation or c.OP_PROVISION
    return _request(actor, store, operation, "retried",
                    expect={c.FAILED}, message=f"{operation.capitalize()} retried.")


def delete_store(actor: Actor, store: Store) -> Store:
    """Delete a store in any live state; deleting a busy store wins."""
    if store.status == c.DELETING:
        return store  # already under way: deleting twice is the same request
    if store.status not in c.DELETABLE_STATES:
        raise StoreRequestError(f"The store is already {store.status}.", status=409)
    return _request(actor, store, c.OP_DELETE, "deleted",
                    expect=c.DELETABLE_STATES, message="Deletion requested.")


# A suspended store can be upgraded too (issue 13); it stays suspended.
UPGRADE_FROM = c.UPGRADABLE_STATES | {c.SUSPENDED}


def check_upgradable(store: Store) -> str:
    """The chart version an upgrade of the store would move to, or the
    reason it cannot be upgraded now (StoreRequestError). A suspended store
    is upgraded and stays suspended (its values switch)."""
    if store.status not in UPGRADE_FROM:
        raise StoreRequestError(
            f"Only ready, degraded, suspended or failed stores can be upgraded; this one is "
            f"{store.status}.", status=409)
    if store.helm_revision is None:
        raise StoreRequestError("The store was never installed; retry it instead.", status=409)
    return get_engine(store.engine).chart_version


def upgrade_store(actor: Actor, store: Store, *, skip_backup: bool = False) -> Store:
    """Upgrade to the platform's current chart, same values and credentials.
    A backup is taken first (issue 12); an operator may skip it when backups
    are what is failing (``skip_backup``, in the audit log)."""
    version = check_upgradable(store)
    if skip_backup and not is_operator(actor.user, "stores.upgrade_store"):
        raise StoreRequestError("Only an operator may upgrade a store without a backup first.",
                                status=403)
    return _request(actor, store, c.OP_UPGRADE, "upgraded",
                    expect=UPGRADE_FROM,
                    message=f"Upgrade to chart {version} requested"
                    + (", without a backup first." if skip_backup else "."),
                    skip_backup=skip_backup)


def check_rollback(store: Store, revision: int) -> Revision:
    """The recorded revision a rollback would go back to, or the reason it
    cannot (StoreRequestError)."""
    if store.status not in c.UPGRADABLE_STATES:
        raise StoreRequestError(
            f"Only ready, degraded or failed stores can be rolled back; this one is "
            f"{store.status}.", status=409)
    if store.suspended:
        # An earlier revision carries its own values: rolling back would
        # start the shop's pods behind the platform's back.
        raise StoreRequestError("The store is suspended; resume it before rolling back.",
                                status=409)
    known = {rev.number: rev for rev in store.revisions.all()}
    if revision not in known:
        raise StoreRequestError(
            f"Revision {revision} does not exist; the store has revisions "
            f"{', '.join(map(str, sorted(known))) or 'none'}.", field="revision")
    if revision == store.helm_revision and store.status != c.FAILED:
        raise StoreRequestError(f"Revision {revision} is the one running now.",
                                field="revision", status=409)
    return known[revision]


def rollback_store(actor: Actor, store: Store, revision: int) -> Store:
    """Roll back to an earlier helm revision of the store's release."""
    check_rollback(store, revision)
    return _request(actor, store, c.OP_ROLLBACK, "rolled_back",
                    expect=c.UPGRADABLE_STATES, message=f"Rollback to revision {revision} "
                    "requested.", target_revision=revision)


def change_store_url(actor: Actor, store: Store) -> Store:
    """Serve the store's custom domains as its rows say and move it to its
    primary domain: the change_url operation (provisioning/domains.py). The
    domain functions (stores/domains.py) call this after changing rows."""
    if store.status not in c.RUNNING_STATES:
        raise StoreRequestError(
            f"Only ready or degraded stores can change their address; this one is "
            f"{store.status}.", status=409)
    return _request(actor, store, c.OP_CHANGE_URL, "change_url", expect=c.RUNNING_STATES,
                    message="Address change requested.")


# --- Suspend and resume (issue 13) ---
def suspend_store(actor: Actor, store: Store) -> Store:
    """Pause a running store: the release stays deployed with its values
    switch ``suspended`` on (no pods, volumes and Secrets kept), and its
    address shows the platform's paused page until it is resumed."""
    # A store without an owner is the warm pool's: it is suspended from
    # pooled (STORE_POOL_SUSPENDED), and only from there, so a stale read of
    # one claimed meanwhile cannot suspend its new owner's store.
    states = {c.POOLED} if store.owner_id is None else c.SUSPENDABLE_STATES
    if store.status not in states:
        raise StoreRequestError(
            f"Only ready or degraded stores can be suspended; this one is {store.status}.",
            status=409)
    return _request(actor, store, c.OP_SUSPEND, "suspended", expect=states,
                    message="Suspend requested.", suspended=True)


def resume_store(actor: Actor, store: Store) -> Store:
    """Bring a suspended store back: values switch off, pods ready, the
    storefront answering, then Ready."""
    if store.status not in c.RESUMABLE_STATES:
        raise StoreRequestError(
            f"Only suspended stores can be resumed; this one is {store.status}.", status=409)
    if store.owner_id is None:
        # A resume ends in ready, which a store without an owner never is.
        raise StoreRequestError(
            "This store waits in the warm pool: the create that claims it resumes it.",
            status=409)
    return _request(actor, store, c.OP_RESUME, "resumed", expect=c.RESUMABLE_STATES,
                    message="Resume requested.", suspended=False)


def previous_good_revision(store: Store) -> Revision | None:
    """The newest revision before the running one that was deployed once."""
    return store.revisions.filter(
        number__lt=store.helm_revision or 0, status__in=["deployed", "superseded"]
    ).first()


def force_fail(actor: Actor, store: Store, message: str = "") -> bool:
    """Operator action for a store stuck in a busy state."""
    with transaction.atomic():
        # Ending the operation takes the lease away: a worker still on it
        # stops at its next heartbeat and cannot overwrite this.
        done = transitions.transition(
            store.id, c.FAILED, expect=c.BUSY_STATES, actor=actor.label,
            reason=c.REASON_FORCE_FAILED,
            message=message or f"Marked failed by {actor.name}.",
        )
        if done:
            audit(actor, "force_fail", store.id)
    return done


# --- Backups and restores (issue 12) ---
def back_up_store(actor: Actor, store: Store, kind: str = c.BACKUP_MANUAL) -> Backup:
    """Back a running store up now: a pending Backup, and the ``backup``
    operation that takes it (provisioning/backups.py)."""
    _check_backups_configured()
    if store.status not in c.BACKUP_STATES:
        raise StoreRequestError(
            f"Only ready or degraded stores can be backed up; this one is {store.status}."
            + (" Its data has not changed since it was paused." if store.suspended else ""),
            status=409)
    with transaction.atomic():
        backup = Backup.objects.create(store=store, kind=kind, actor=actor.label)
        _request(actor, store, c.OP_BACKUP, "backed up", expect=c.BACKUP_STATES,
                 message="Backup requested." if kind == c.BACKUP_MANUAL
                 else "Scheduled backup started.")
    backup.refresh_from_db()
    return backup


def restore_store(actor: Actor, store: Store, backup: Backup) -> Store:
    """Replace a store's database and files with a backup's. A safety
    backup is taken first, unless the store has failed (its database may be
    what is broken)."""
    _check_backups_configured()
    if backup.store_id != store.id:  # pragma: no cover - the views look backups up by store
        raise StoreRequestError("That backup is another store's.", status=404)
    if backup.status != c.BACKUP_SUCCEEDED:
        raise StoreRequestError(
            f"Backup {backup.id} is {backup.status}; only a succeeded backup can be restored.",
            field="backup_id", status=409)
    if store.status not in c.RESTORABLE_STATES:
        raise StoreRequestError(
            f"Only ready, degraded or failed stores can be restored; this one is "
            f"{store.status}.", status=409)
    return _request(actor, store, c.OP_RESTORE, "restored", expect=c.RESTORABLE_STATES,
                    message=f"Restore of backup {backup.id} requested: the store's database "
                    "and files will be replaced.", target_backup_id=backup.id,
                    skip_backup=store.status == c.FAILED)


def clone_store(actor: Actor, source: Store, name: object, backup_id: object = None) -> Store:
    """A new store of the source's owner, restored from one of the source's
    backups (its latest good one by default), at its own address. It counts
    toward the owner's quota like any new store; a deleted store's backups
    bring it back this way while they are kept (STORE_BACKUP_KEEP_AFTER_DELETE)."""
    _check_backups_configured()
    good = Backup.objects.filter(store=source, status=c.BACKUP_SUCCEEDED)
    if backup_id in (None, ""):
        backup = good.first()
        if backup is None:
            raise StoreRequestError(f"{source.name} has no good backup to copy yet.",
                                    status=409)
    else:
        backup = good.filter(pk=backup_id).first() if isinstance(backup_id, str) else None
        if backup is None:
            raise StoreRequestError(
                f"{source.name} has no good backup with id {str(backup_id)[:40]!r}; the "
                "backups list shows the ones it has.", field="backup_id", status=404)
    return create_store(actor, name, source.engine, from_backup=backup)


def _check_backups_configured() -> None:
    """A clear 400 naming the missing setting when object storage is not set up."""
    try:
        backups.check_configured()
    except backups.NotConfigured as exc:
        raise StoreRequestError(str(exc)) from exc


def _copy_credentials(source: Store, store: Store) -> None:
    """A copy runs on its source's data, and that data holds the source's
    admin login and database users: it gets the source's credentials."""
    creds = StoreCredentials.objects.filter(store=source).first()
    if creds is not None:
        StoreCredentials.objects.create(store=store, encrypted=creds.encrypted)
