"""What an owner can be told about their store: the notification event types.

Each type says which store events (``StoreEvent`` rows) it stands for. The
outbox (``stores.notifications``) reads new store events in id order and
asks ``type_for(event)`` which type, if any, each one is; owners subscribe
to types (e-mail on the account page, webhooks per endpoint).

A feature that adds something worth telling (certificates, domains,
backups) registers its own types where its constants live, e.g.::

    register(EventType(
        "backup.failed", "Backup failed", "A backup of the store did not complete.",
        email_by_default=True,
        matches=lambda e: e.kind == c.EVENT_WARNING and e.reason == c.REASON_BACKUP_FAILED,
    ))

The first registered type that matches an event wins, so specific types
(an upgrade that failed) are registered before general ones (a failure).
This module sits with the constants: it imports nothing but them, and
``stores.transitions`` never imports it (statuses change without knowing
who listens).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stores import constants as c


@dataclass(frozen=True)
class EventType:
    key: str  # stable, in payloads and subscriptions: "store.failed"
    title: str
    description: str
    email_by_default: bool
    # Called with a StoreEvent (kind, status_from, status_to, reason, details).
    matches: Callable[[object], bool]


REGISTRY: dict[str, EventType] = {}


def register(event_type: EventType) -> EventType:
    if event_type.key in REGISTRY:
        raise ValueError(f"notification type {event_type.key} is registered twice")
    REGISTRY[event_type.key] = event_type
    return event_type


def type_for(event) -> EventType | None:
    """The notification type a store event stands for, or None."""
    return next((t for t in REGISTRY.values() if t.matches(event)), None)


def choices() -> list[tuple[str, str]]:
    return [(t.key, t.title) for t in REGISTRY.values()]


def email_defaults() -> list[str]:
    return [t.key for t in REGISTRY.values() if t.email_by_default]


def _status(to: str, *, came_from: frozenset[str] | None = None) -> Callable[[object], bool]:
    """Matches a status change into ``to`` (from one of ``came_from``)."""
    def matches(event) -> bool:
        return (
            event.kind == c.EVENT_STATUS and event.status_to == to
            and (came_from is None or event.status_from in came_from)
        )
    return matches


def _detail(event, key: str) -> str:
    return (getattr(event, "details", None) or {}).get(key, "")


# Sent to one endpoint when its owner presses "Send test event"; never
# produced by a store event.
TEST_EVENT = "webhook.test"

STORE_READY = register(EventType(
    "store.ready", "Store ready", "A new store finished provisioning and serves its storefront.",
    email_by_default=False,
    matches=_status(c.READY, came_from=frozenset({c.REQUESTED, c.PROVISIONING})),
))
STORE_UPGRADED = register(EventType(
    "store.upgraded", "Upgrade done", "An upgrade finished; the store is ready.",
    email_by_default=False, matches=_status(c.READY, came_from=frozenset({c.UPGRADING})),
))
STORE_UPGRADE_FAILED = register(EventType(
    "store.upgrade_failed", "Upgrade failed", "An upgrade failed, with the reason.",
    email_by_default=True, matches=_status(c.FAILED, came_from=frozenset({c.UPGRADING})),
))
STORE_ROLLED_BACK = register(EventType(
    "store.rolled_back", "Rollback done", "A rollback finished; the store is ready.",
    email_by_default=False, matches=_status(c.READY, came_from=frozenset({c.ROLLING_BACK})),
))
STORE_ROLLBACK_FAILED = register(EventType(
    "store.rollback_failed", "Rollback failed", "A rollback failed, with the reason.",
    email_by_default=True, matches=_status(c.FAILED, came_from=frozenset({c.ROLLING_BACK})),
))
# HTTPS and custom domains (issue 11). Registered before the general
# failure and degradation types, which they refine.
CERTIFICATE_FAILED = register(EventType(
    "certificate.failed", "Certificate not issued",
    "cert-manager did not issue a certificate for the store or one of its domains, so "
    "the operation failed.",
    email_by_default=True,
    matches=lambda e: e.reason == c.REASON_CERTIFICATE_NOT_ISSUED and _status(c.FAILED)(e),
))
CERTIFICATE_INVALID = register(EventType(
    "certificate.invalid", "Certificate failing",
    "The store's certificate expired or is no longer valid; browsers warn its shoppers.",
    email_by_default=True,
    matches=lambda e: e.reason == c.REASON_CERTIFICATE_INVALID and _status(c.DEGRADED)(e),
))
DOMAIN_VERIFIED = register(EventType(
    "domain.verified", "Domain verified", "A custom domain's DNS records are right.",
    email_by_default=False, matches=lambda e: _detail(e, "domain_status") == c.DOMAIN_VERIFIED,
))
DOMAIN_ACTIVE = register(EventType(
    "domain.active", "Domain live",
    "The store answers at a custom domain, with its certificate issued.",
    email_by_default=False, matches=lambda e: _detail(e, "domain_status") == c.DOMAIN_ACTIVE,
))
DOMAIN_LOST = register(EventType(
    "domain.lost", "Domain lost", "A custom domain's DNS no longer points at the store.",
    email_by_default=True, matches=lambda e: _detail(e, "dns") == "lost",
))
# Backups and restores (issue 12): the backup's own events carry
# details {"backup": id, "backup_status": ...}.
BACKUP_FAILED = register(EventType(
    "backup.failed", "Backup failed",
    "A backup of the store failed or did not verify; earlier backups are untouched.",
    email_by_default=True,
    matches=lambda e: _detail(e, "backup_status") == c.BACKUP_FAILED,
))
BACKUP_SUCCEEDED = register(EventType(
    "backup.succeeded", "Backup done", "A backup of the store was written and verified.",
    email_by_default=False,
    matches=lambda e: _detail(e, "backup_status") == c.BACKUP_SUCCEEDED,
))
STORE_RESTORED = register(EventType(
    "store.restored", "Restore done", "The store's data was restored from a backup.",
    email_by_default=True, matches=_status(c.READY, came_from=frozenset({c.RESTORING})),
))
STORE_RESTORE_FAILED = register(EventType(
    "store.restore_failed", "Restore failed", "A restore stopped before it finished.",
    email_by_default=True, matches=_status(c.FAILED, came_from=frozenset({c.RESTORING})),
))
STORE_FAILED = register(EventType(
    "store.failed", "Store failed",
    "Provisioning or deletion failed, or an operator stopped the store, with the reason.",
    email_by_default=True, matches=_status(c.FAILED),
))
STORE_DELETED = register(EventType(
    "store.deleted", "Store deleted", "The store and everything it had are gone.",
    email_by_default=True, matches=_status(c.DELETED),
))
STORE_DEGRADED = register(EventType(
    "store.degraded", "Store degraded", "A health check found the running store unhealthy.",
    email_by_default=False, matches=_status(c.DEGRADED),
))
STORE_RECOVERED = register(EventType(
    "store.recovered", "Store recovered", "A degraded store is healthy again.",
    email_by_default=False, matches=_status(c.READY, came_from=frozenset({c.DEGRADED})),
))
