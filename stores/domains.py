"""Custom domains: the service functions the web page, the API and the admin
share, and the periodic DNS check (issue 11).

A domain is added (``pending_verification``), verified by DNS on demand or by
the periodic check (``verified``), served by the store's release once the
``change_url`` operation ran (``active``), and removed (``removing``, then
gone). Every status change is an event on the store's timeline. What the
release serves is changed only by that operation, under the store's lease:
these functions change the rows, then ask for it (``services.change_store_url``)
when the store is running; the periodic check asks for it later otherwise.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from provisioning import dns
from stores import constants as c
from stores import services
from stores.models import Domain, Store
from stores.services import Actor, StoreRequestError, audit
from stores.transitions import record_event

log = logging.getLogger(__name__)

LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
SYSTEM = Actor(None, via="beat")


def clean_hostname(value: object) -> str:
    """The host name to store, or StoreRequestError saying what to fix."""
    if not isinstance(value, str) or not value.strip():
        raise StoreRequestError("Give a host name, like shop.example.com.", field="hostname")
    text = value.strip().lower().rstrip(".")
    if "://" in text or "/" in text or " " in text:
        raise StoreRequestError(
            f"{value!r} is not a host name: give only the name, like shop.example.com, without "
            "https:// or a path.", field="hostname")
    if "*" in text:
        raise StoreRequestError(
            "Wildcard names are not supported: add each host name you want, like "
            "shop.example.com.", field="hostname")
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        pass
    else:
        raise StoreRequestError(
            f"{text} is an IP address: give a host name that points at the platform, like "
            "shop.example.com.", field="hostname")
    try:
        text = text.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise StoreRequestError(f"{value!r} is not a valid host name.", field="hostname") from exc
    labels = text.split(".")
    if (len(text) > 253 or len(labels) < 2 or not all(LABEL.match(label) for label in labels)
            or labels[-1].isdigit()):
        raise StoreRequestError(
            f"{value!r} is not a valid host name: use letters, digits and hyphens in dot-"
            "separated parts, like shop.example.com.", field="hostname")
    base = settings.STORE_BASE_DOMAIN.lower()
    if text == base or text.endswith(f".{base}"):
        raise StoreRequestError(
            f"{text} is under the platform's own domain {base}: every store already has its "
            "address there. Add a name of your own domain.", field="hostname")
    return text


def dns_records(domain: Domain) -> list[dict]:
    """The DNS records the owner creates for a domain (stores.domains checks them)."""
    records = [{"type": "TXT", "name": domain.challenge_name, "value": domain.verification_token,
                "purpose": "proves the name is yours"},
               {"type": "CNAME", "name": domain.hostname, "value": domain.store.host,
                "purpose": "sends visitors to the store"}]
    for address in settings.STORE_INGRESS_IPS:
        records.append({"type": "AAAA" if ":" in address else "A", "name": domain.hostname,
                        "value": address,
                        "purpose": "instead of the CNAME, for a name without subdomain"})
    return records


def _event(domain: Domain, old: str, new: str, note: str, actor: str,
           kind: str = c.EVENT_INFO, reason: str = "") -> None:
    record_event(domain.store_id, kind, f"Domain {domain.hostname}: {old} -> {new}. {note}",
                 reason=reason, actor=actor,
                 details={"domain": domain.hostname, "domain_status": new})


def _check_store(store: Store) -> None:
    if store.status in (c.DELETING, c.DELETED):
        raise StoreRequestError(f"The store is {store.status}; its domains cannot change.",
                                status=409)


def add_domain(actor: Actor, store: Store, hostname: object) -> Domain:
    name = clean_hostname(hostname)
    _check_store(store)
    with transaction.atomic():
        Store.objects.select_for_update().filter(pk=store.id).first()  # one add at a time
        existing = Domain.objects.filter(hostname=name).select_related("store").first()
        if existing is not None:
            whose = "this store" if existing.store_id == store.id else "another store"
            raise StoreRequestError(f"{name} is already used by {whose}.", field="hostname",
                                    status=409)
        if Store.objects.filter(host=name).exclude(status=c.DELETED).exists():
            raise StoreRequestError(f"{name} is the address of another store.",
                                    field="hostname", status=409)
        count = Domain.objects.filter(store=store).count()
        if count >= settings.STORE_MAX_DOMAINS:
            raise StoreRequestError(
                f"This store already has {count} of its {settings.STORE_MAX_DOMAINS} allowed "
                "domains. Remove one before adding another.", status=409)
        try:
            with transaction.atomic():
                domain = Domain.objects.create(store=store, hostname=name)
        except IntegrityError as exc:
            raise StoreRequestError(f"{name} was just added by another store.",
                                    field="hostname", status=409) from exc
        record_event(store.id, c.EVENT_INFO,
                     f"Domain {name} added ({c.DOMAIN_PENDING}): create its DNS records, then "
                     "verify it.", actor=actor.label)
        audit(actor, "domain_add", store.id, hostname=name)
    return domain


def verify_domain(actor: Actor, domain: Domain) -> Domain:
    """Check the domain's DNS now; a verified domain is then served."""
    store = domain.store
    _check_store(store)
    verdict = dns.check(domain.hostname, domain.verification_token, store.host)
    _record_check(domain, verdict, actor.label)
    audit(actor, "domain_verify", store.id, hostname=domain.hostname, ok=verdict.ok)
    domain.refresh_from_db()
    if verdict.ok:
        request_address_change(actor, store)
    return domain


def make_primary(actor: Actor, domain: Domain) -> Domain:
    """The store's public URL moves to this domain."""
    store = domain.store
    _check_store(store)
    if domain.status not in c.SERVED_DOMAIN_STATES:
        raise StoreRequestError(
            f"{domain.hostname} is {domain.status}: only a verified domain can become the "
            "store's primary address.", status=409)
    if not domain.is_primary:
        with transaction.atomic():
            Domain.objects.filter(store=store, is_primary=True).update(is_primary=False)
            Domain.objects.filter(pk=domain.pk).update(is_primary=True,
                                                       updated_at=timezone.now())
            record_event(store.id, c.EVENT_INFO,
                         f"Domain {domain.hostname} is now the primary address; "
                         f"{store.host} will redirect there.", actor=actor.label)
            audit(actor, "domain_primary", store.id, hostname=domain.hostname)
    request_address_change(actor, store)
    domain.refresh_from_db()
    return domain


def remove_domain(actor: Actor, domain: Domain) -> Domain | None:
    """A domain never served goes at once; a served one leaves the release
    first (the change_url operation deletes its row)."""
    store = domain.store
    if domain.status == c.DOMAIN_REMOVING:
        return domain
    with transaction.atomic():
        audit(actor, "domain_remove", store.id, hostname=domain.hostname)
        if domain.status in (c.DOMAIN_PENDING, c.DOMAIN_FAILED) or store.status in (
                c.DELETING, c.DELETED):
            domain.delete()
            record_event(store.id, c.EVENT_INFO, f"Domain {domain.hostname} removed.",
                         actor=actor.label)
            return None
        Domain.objects.filter(pk=domain.pk).update(status=c.DOMAIN_REMOVING, is_primary=False,
                                                   updated_at=timezone.now())
        _event(domain, domain.status, c.DOMAIN_REMOVING,
               "The store stops answering there once its release is updated.", actor.label)
    request_address_change(actor, store)
    domain.refresh_from_db()
    return domain


def needs_address_change(store: Store) -> bool:
    """Do the store's domain rows differ from what its release serves?"""
    domains = list(Domain.objects.filter(store=store).only("status", "is_primary", "hostname"))
    primary = next((d.hostname for d in domains
                    if d.is_primary and d.status in c.SERVED_DOMAIN_STATES), "")
    return (any(d.status in (c.DOMAIN_VERIFIED, c.DOMAIN_REMOVING) for d in domains)
            or primary != store.public_host)


def request_address_change(actor: Actor, store: Store) -> bool:
    """Ask for the change_url operation if the store is running and its
    release differs from its rows; otherwise the periodic check asks later."""
    store.refresh_from_db()
    if store.status not in c.RUNNING_STATES or not needs_address_change(store):
        return False
    try:
        services.change_store_url(actor, store)
    except StoreRequestError:
        return False  # it moved on meanwhile: the periodic check asks again
    return True


def _record_check(domain: Domain, verdict: dns.Verdict, actor: str) -> None:
    """Apply one DNS check to the domain: status, last error, events."""
    now = timezone.now()
    if verdict.unknown:
        Domain.objects.filter(pk=domain.pk).update(last_checked_at=now)
        return
    fields = {"last_checked_at": now, "last_error": verdict.message}
    if verdict.ok and domain.status in (c.DOMAIN_PENDING, c.DOMAIN_FAILED):
        fields.update(status=c.DOMAIN_VERIFIED, verified_at=now, certificate_state="")
        _event(domain, domain.status, c.DOMAIN_VERIFIED,
               "Its DNS records are right; the store will answer there.", actor)
    elif domain.status in c.SERVED_DOMAIN_STATES:
        if not verdict.ok and not domain.last_error:
            record_event(domain.store_id, c.EVENT_WARNING,
                         f"Domain {domain.hostname} no longer points at this store: "
                         f"{verdict.message} It stays until you remove it.", actor=actor,
                         details={"domain": domain.hostname, "dns": "lost"})
        elif verdict.ok and domain.last_error:
            record_event(domain.store_id, c.EVENT_INFO,
                         f"Domain {domain.hostname} points at this store again.", actor=actor,
                         details={"domain": domain.hostname, "dns": "restored"})
    Domain.objects.filter(pk=domain.pk).update(**fields)


@shared_task(ignore_result=True)
def check_domains(limit: int = 200) -> dict:
    """Check the DNS of the domains checked longest ago, then ask for an
    address change for running stores whose release is behind their rows."""
    counts = {"checked": 0, "requested": 0}
    stale = timezone.now() - timedelta(seconds=settings.STORE_DOMAIN_CHECK_INTERVAL / 2)
    domains = (
        Domain.objects.exclude(status=c.DOMAIN_REMOVING)
        .filter(Q(last_checked_at__isnull=True) | Q(last_checked_at__lt=stale))
        .select_related("store").order_by(F("last_checked_at").asc(nulls_first=True))[:limit]
    )
    for domain in domains:
        if domain.store.status in (c.DELETING, c.DELETED):
            continue
        verdict = dns.check(domain.hostname, domain.verification_token, domain.store.host)
        _record_check(domain, verdict, "domain-check")
        counts["checked"] += 1
    for store in Store.objects.filter(status__in=list(c.RUNNING_STATES),
                                      domains__isnull=False).distinct():
        if request_address_change(SYSTEM, store):
            counts["requested"] += 1
    return counts
