"""The outbox: store events become e-mails and webhook deliveries.

``stores.transitions`` writes an append-only ``StoreEvent`` for every status
change and knows nothing of who listens. Beat runs ``pump`` every
NOTIFY_INTERVAL seconds; it reads the events after its cursor (by id),
asks the registry (``stores.notification_types``) what each one is, and in
one transaction creates the owner's ``OutgoingEmail`` and
``WebhookDelivery`` rows and moves the cursor. Sending happens afterwards,
in tasks, from those rows. So:

- nothing is lost when the broker or the mail server is briefly down: the
  rows wait and the next pump publishes them again;
- no notification ever blocks or fails a store operation: the operation
  only wrote its event;
- an event is fanned out once (the cursor and the rows commit together; a
  second pump waits for the first one's lock).

This module renders what the outside world sees (the store's API
representation in webhook payloads, the e-mails), so it sits with the doors
(views, API, admin) in the import order.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from stores import constants as c
from stores import notification_types, webhooks
from stores.api.serializers import StoreSerializer
from stores.models import (
    Account,
    NotificationCursor,
    OutgoingEmail,
    StoreEvent,
    WebhookDelivery,
    WebhookEndpoint,
)

log = logging.getLogger(__name__)

CURSOR = "outbox"
BATCH = 500
EMAIL_ATTEMPTS = 6
# A published task that has not run after this long is published again.
REDISPATCH_AFTER = timedelta(seconds=120)


def event_id(event: StoreEvent) -> str:
    """The stable, ordered id of the notification of a store event."""
    return f"evt_{event.id:012d}"


def store_page(store_id: str) -> str:
    return f"{settings.PLATFORM_URL}/stores/{store_id}/"


def payload(event: StoreEvent, event_type: notification_types.EventType) -> dict:
    return {
        "id": event_id(event),
        "type": event_type.key,
        "timestamp": event.created_at.isoformat(),
        "data": {
            "store": StoreSerializer(event.store).data,
            "status_from": event.status_from,
            "status_to": event.status_to,
            "reason": event.reason,
            "reason_title": c.REASON_TITLES.get(event.reason, ""),
            "message": event.message,
            "store_page": store_page(event.store_id),
        },
    }


@shared_task(ignore_result=True)
def pump() -> dict:
    """Fan out new store events, then publish what is due. Returns counts."""
    counts = fan_out()
    counts.update(publish_due())
    return counts


def fan_out() -> dict:
    counts = {"events": 0, "emails": 0, "deliveries": 0}
    with transaction.atomic():
        NotificationCursor.objects.get_or_create(name=CURSOR)
        cursor = NotificationCursor.objects.select_for_update().get(name=CURSOR)
        events = list(
            StoreEvent.objects.filter(id__gt=cursor.last_event_id)
            .select_related("store", "store__owner").order_by("id")[:BATCH]
        )
        if not events:
            return counts
        endpoints = _endpoints_of({e.store.owner_id for e in events})
        accounts = {a.user_id: a for a in Account.objects.filter(
            user_id__in={e.store.owner_id for e in events})}
        for event in events:
            event_type = notification_types.type_for(event)
            if event_type is None or event.store.owner_id is None:
                continue  # a pooled store has no one to tell (stores/pool.py)
            counts["events"] += 1
            owner = event.store.owner
            body = payload(event, event_type)
            for endpoint in endpoints.get(owner.pk, []):
                if event_type.key in endpoint.event_types:
                    WebhookDelivery.objects.get_or_create(
                        endpoint=endpoint, event_id=body["id"], redelivery_of=None,
                        defaults={"event_type": event_type.key, "payload": body},
                    )
                    counts["deliveries"] += 1
            account = accounts.get(owner.pk)
            wanted = account.email_events if account else notification_types.email_defaults()
            if owner.email and event_type.key in wanted:
                _queue_email(owner, event, event_type)
                counts["emails"] += 1
        cursor.last_event_id = events[-1].id
        cursor.save(update_fields=["last_event_id", "updated_at"])
    return counts


def _endpoints_of(owner_ids: set) -> dict[int, list[WebhookEndpoint]]:
    found: dict[int, list[WebhookEndpoint]] = {}
    for endpoint in WebhookEndpoint.objects.filter(owner_id__in=owner_ids, enabled=True):
        found.setdefault(endpoint.owner_id, []).append(endpoint)
    return found


def _queue_email(owner, event: StoreEvent, event_type) -> None:
    context = {
        "user": owner, "store": event.store, "event": event, "type": event_type,
        "reason_title": c.REASON_TITLES.get(event.reason, ""),
        "store_page": store_page(event.store_id),
        "account_page": f"{settings.PLATFORM_URL}/accounts/",
    }
    subject = " ".join(render_to_string("accounts/email/notification_subject.txt",
                                        context).split())
    OutgoingEmail.objects.get_or_create(
        user=owner, event_id=event_id(event),
        defaults={
            "to": owner.email, "event_type": event_type.key, "store_id": event.store_id,
            "subject": subject[:200],
            "body": render_to_string("accounts/email/notification_body.txt", context),
        },
    )


def publish_due() -> dict:
    """Publish delivery runs and e-mails that are due and not already
    published (or published long ago and never run: a lost message)."""
    now = timezone.now()
    stale = now - REDISPATCH_AFTER
    endpoint_ids = set(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.PENDING, next_attempt_at__lte=now, endpoint__enabled=True,
        ).filter(
            Q(endpoint__dispatched_at__isnull=True) | Q(endpoint__dispatched_at__lt=stale)
        ).values_list("endpoint_id", flat=True).distinct()[:1000]
    )
    for endpoint_id in sorted(endpoint_ids):
        webhooks.dispatch(endpoint_id)
    emails = list(
        OutgoingEmail.objects.filter(status=OutgoingEmail.PENDING, next_attempt_at__lte=now)
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=stale))
        .values_list("id", flat=True)[:1000]
    )
    for email_id in emails:
        OutgoingEmail.objects.filter(pk=email_id).update(dispatched_at=now)
        try:
            send_email.apply_async(args=[email_id], retry=False)
        except Exception as exc:  # broker down: the next pump publishes it
            OutgoingEmail.objects.filter(pk=email_id).update(dispatched_at=None)
            log.warning("email=%s could not be published, the next pump will: %s",
                        email_id, exc)
            break
    return {"endpoints_published": len(endpoint_ids), "emails_published": len(emails)}


@shared_task(ignore_result=True)
def send_email(email_id: int) -> bool:
    """Send one notification e-mail; on failure try again later, a few times."""
    now = timezone.now()
    # Claim it: a second copy of this task finds it no longer due.
    if not OutgoingEmail.objects.filter(
            pk=email_id, status=OutgoingEmail.PENDING, next_attempt_at__lte=now,
    ).update(next_attempt_at=now + timedelta(seconds=settings.EMAIL_TIMEOUT * 3)):
        return False
    email = OutgoingEmail.objects.get(pk=email_id)
    attempts = email.attempts + 1
    try:
        EmailMessage(email.subject, email.body, settings.DEFAULT_FROM_EMAIL,
                     [email.to]).send()
    except Exception as exc:  # smtplib, socket and ssl errors alike
        done = attempts >= EMAIL_ATTEMPTS
        OutgoingEmail.objects.filter(pk=email_id).update(
            attempts=attempts, error=f"{type(exc).__name__}: {exc}"[:500], dispatched_at=None,
            status=OutgoingEmail.FAILED if done else OutgoingEmail.PENDING,
            next_attempt_at=now + timedelta(seconds=60 * 2 ** attempts),
        )
        log.warning("email=%s to user=%s not sent (attempt %s%s): %s", email_id,
                    email.user_id, attempts, ", giving up" if done else "", exc)
        return False
    OutgoingEmail.objects.filter(pk=email_id).update(
        attempts=attempts, status=OutgoingEmail.SENT, sent_at=timezone.now(), error="",
        dispatched_at=None)
    log.info("email=%s %s sent to user=%s", email_id, email.event_type, email.user_id)
    return True
