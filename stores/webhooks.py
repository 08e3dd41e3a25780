"""Webhook endpoints: registration, secrets, and signed delivery with retries.

Messages follow the Standard Webhooks spec (https://www.standardwebhooks.com/):
headers ``webhook-id`` (the event id, the same on every attempt),
``webhook-timestamp`` and ``webhook-signature`` (HMAC-SHA256 over
``id.timestamp.body``), computed by the ``standardwebhooks`` library, so
receivers verify with any Standard Webhooks verifier.

The platform must not become a way into the networks it runs in: an
endpoint's host is resolved and every address it resolves to must be public
(not loopback, private, link-local, multicast, reserved...), at registration
and again at each delivery. The request then goes to the address we checked
(the Host header and TLS name stay the URL's), so a DNS answer that changes
between check and connect (DNS rebinding) cannot redirect it. Redirects are
not followed.

Deliveries to one endpoint go out one at a time, in event order. A failed
attempt is retried with exponential backoff for WEBHOOK_RETRY_WINDOW; it does
not hold back newer events, so after a failure a receiver orders by the
event id (``evt_`` and a zero-padded, increasing number). An endpoint that
has failed for WEBHOOK_DISABLE_AFTER is disabled and its owner told by mail.

This is a service module: the account pages, the API and the admin call
it; ``stores.notifications`` creates the deliveries and e-mails.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import secrets
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import urllib3
from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from prometheus_client import Counter
from standardwebhooks.webhooks import Webhook

from stores import notification_types
from stores.models import DeliveryAttempt, OutgoingEmail, WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

MAX_ENDPOINTS_PER_USER = 10
EXCERPT_BYTES = 1024
# A worker holds an endpoint this long without renewing (one attempt at most
# takes WEBHOOK_TIMEOUT twice: connect, then read).
LEASE_SLACK = 30
BATCH = 50

DELIVERIES = Counter(
    "storeplatform_webhook_deliveries_total",
    "Webhook delivery attempts by outcome: delivered (2xx), failed (will be retried), "
    "gave_up (retry window over), refused (address not allowed).",
    ["outcome"],
)
# Labelled, so nothing is written before the first retry: in multiprocess
# mode an unlabelled metric opens its file at import, before a worker has
# created PROMETHEUS_MULTIPROC_DIR.
RETRIES = Counter(
    "storeplatform_webhook_retries_total",
    "Webhook attempts after the first one of a delivery, by their outcome.",
    ["outcome"],
)


class WebhookError(Exception):
    """A request about endpoints we refuse; ``field`` names the input to fix."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


class AddressRefused(WebhookError):
    """The endpoint's host resolves to an address the platform must not reach."""


# -- addresses -----------------------------------------------------------------
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64)."""
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if any(ip in net for net in NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_problem(address: str) -> str | None:
    """Why the platform must not connect to ``address``, or None."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if settings.WEBHOOK_TEST_ALLOW_LOOPBACK and any(ip in net for net in LOOPBACK):
        return None
    if isinstance(ip, ipaddress.IPv6Address) and (inner := _embedded_ipv4(ip)) is not None:
        problem = address_problem(str(inner))
        return f"which stands for {inner}, {problem}" if problem else None
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private or not ip.is_global:
        return "a private or reserved address"
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, with the configured nameservers
    (WEBHOOK_DNS_SERVERS) or the system resolver."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    if settings.WEBHOOK_DNS_SERVERS:
        import dns.exception
        import dns.resolver

        # "address" or "address:port" (one port for all of them: dnspython's rule)
        servers = [server.rpartition(":") for server in settings.WEBHOOK_DNS_SERVERS]
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [address or port for address, _, port in servers]
        if servers[0][0]:
            resolver.port = int(servers[0][2])
        resolver.lifetime = 5
        found: list[str] = []
        for kind in ("A", "AAAA"):
            try:
                found += [r.to_text() for r in resolver.resolve(host, kind)]
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                continue
            except dns.exception.DNSException as exc:
                raise WebhookError(f"{host} could not be resolved: {exc}", field="url") from exc
        return found
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise WebhookError(f"{host} could not be resolved ({exc.strerror}).",
                           field="url") from exc
    return list(dict.fromkeys(info[4][0] for info in infos))


def checked_addresses(url: str) -> list[str]:
    """The URL's addresses, all of which must be allowed; raises AddressRefused."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    addresses = resolve(host, port)
    if not addresses:
        raise WebhookError(f"{host} does not resolve to any address.", field="url")
    for address in addresses:
        problem = address_problem(address)
        if problem:
            raise AddressRefused(
                f"{host} resolves to {address}, {problem}. Webhooks can only be sent to "
                "public addresses.", field="url")
    return addresses


def validate_url(url: object) -> str:
    """A clean endpoint URL, or WebhookError saying what to fix."""
    if not isinstance(url, str) or not url.strip():
        raise WebhookError("Enter the URL that should receive the webhooks.", field="url")
    url = url.strip()
    if len(url) > 500:
        raise WebhookError("The URL is longer than 500 characters.", field="url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise WebhookError(f"That is not a valid URL: {exc}.", field="url") from exc
    allowed = ("https",) if settings.WEBHOOK_REQUIRE_HTTPS else ("https", "http")
    if parts.scheme not in allowed:
        raise WebhookError(
            "The URL must start with https://." if settings.WEBHOOK_REQUIRE_HTTPS
            else "The URL must start with https:// or http://.", field="url")
    if not parts.hostname:
        raise WebhookError("The URL has no host name.", field="url")
    if parts.username or parts.password:
        raise WebhookError("Put no user name or password in the URL; verify the "
                           "signature instead.", field="url")
    if parts.fragment:
        raise WebhookError("Remove the #fragment from the URL.", field="url")
    checked_addresses(url)
    return url


def validate_event_types(event_types: object) -> list[str]:
    known = notification_types.REGISTRY
    if not isinstance(event_types, list) or not all(isinstance(t, str) for t in event_types):
        raise WebhookError("event_types must be a list of event type names.",
                           field="event_types")
    unknown = sorted(set(event_types) - set(known))
    if unknown:
        raise WebhookError(f"Unknown event types: {', '.join(unknown)}; choose from "
                           f"{', '.join(known)}.", field="event_types")
    if not event_types:
        raise WebhookError("Pick at least one event type.", field="event_types")
    return [t for t in known if t in event_types]  # registry order, no duplicates


# -- endpoints -----------------------------------------------------------------
def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create_endpoint(user, url: object, event_types: object,
                    description: str = "") -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its secret (shown to the owner once)."""
    url = validate_url(url)
    event_types = validate_event_types(event_types)
    if WebhookEndpoint.objects.filter(owner=user).count() >= MAX_ENDPOINTS_PER_USER:
        raise WebhookError(f"You already have {MAX_ENDPOINTS_PER_USER} endpoints; delete one "
                           "first.", status=409)
    secret = new_secret()
    endpoint = WebhookEndpoint.objects.create(
        owner=user, url=url, event_types=event_types, description=str(description)[:200],
        secret_encrypted=WebhookEndpoint.encrypt(secret),
    )
    log.info("webhook endpoint=%s registered by user=%s", endpoint.pk, user.pk)
    return endpoint, secret


def update_endpoint(endpoint: WebhookEndpoint, **changes) -> WebhookEndpoint:
    """Change the URL, description, event types or enabled flag. Enabling a
    disabled endpoint starts its failure clock afresh."""
    if "url" in changes:
        endpoint.url = validate_url(changes["url"])
    if "event_types" in changes:
        endpoint.event_types = validate_event_types(changes["event_types"])
    if "description" in changes:
        endpoint.description = str(changes["description"])[:200]
    if "enabled" in changes:
        enabled = bool(changes["enabled"])
        if enabled and not endpoint.enabled:
            endpoint.failing_since = None
            endpoint.disabled_reason = ""
        endpoint.enabled = enabled
    endpoint.save()
    return endpoint


def rotate_secret(endpoint: WebhookEndpoint, *, keep_previous_for: int = 24 * 3600) -> str:
    """A new secret, shown once. The old one keeps signing (a second
    signature in the header) for ``keep_previous_for`` seconds, so the
    receiver can switch without losing messages."""
    secret = new_secret()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_until = timezone.now() + timedelta(seconds=keep_previous_for)
    endpoint.secret_encrypted = WebhookEndpoint.encrypt(secret)
    endpoint.save(update_fields=["previous_secret_encrypted", "previous_secret_until",
                                 "secret_encrypted", "updated_at"])
    return secret


def send_test_event(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Queue a ``webhook.test`` message to this endpoint, whatever it subscribes to."""
    if not endpoint.enabled:
        raise WebhookError("The endpoint is disabled; enable it first.", status=409)
    now = timezone.now()
    event_id = f"evt_test_{uuid.uuid4().hex[:16]}"
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event_id=event_id, event_type=notification_types.TEST_EVENT,
        payload={"id": event_id, "type": notification_types.TEST_EVENT,
                 "timestamp": now.isoformat(),
                 "data": {"endpoint": endpoint.pk,
                          "message": "A test event sent from the account page."}},
    )
    transaction.on_commit(lambda: dispatch(endpoint.pk))
    return delivery


def redeliver(delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a message again (same webhook-id and body, new timestamp and
    signature), as a delivery of its own with its own retries."""
    if not delivery.endpoint.enabled:
        raise WebhookError("The endpoint is disabled; enable it first.", status=409)
    copy = WebhookDelivery.objects.create(
        endpoint=delivery.endpoint, event_id=delivery.event_id, event_type=delivery.event_type,
        payload=delivery.payload, redelivery_of=delivery,
    )
    transaction.on_commit(lambda: dispatch(delivery.endpoint_id))
    return copy


# -- delivery ------------------------------------------------------------------
def dispatch(endpoint_id: int) -> bool:
    """Publish a delivery run for the endpoint. Never raises: when the broker
    is down, the outbox (stores.notifications.pump) publishes it later."""
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(dispatched_at=timezone.now())
    try:
        deliver_endpoint.apply_async(args=[endpoint_id], retry=False)
        return True
    except Exception as exc:  # kombu raises the transport's own errors
        WebhookEndpoint.objects.filter(pk=endpoint_id).update(dispatched_at=None)
        log.warning("webhook endpoint=%s could not publish its deliveries, the outbox "
                    "will: %s", endpoint_id, exc)
        return False


def due(endpoint_id: int):
    return WebhookDelivery.objects.filter(
        endpoint_id=endpoint_id, status=WebhookDelivery.PENDING,
        next_attempt_at__lte=timezone.now(),
    ).order_by("id")


@shared_task(ignore_result=True)
def deliver_endpoint(endpoint_id: int) -> int:
    """Deliver the endpoint's due messages, oldest first; returns how many
    attempts were made. One worker at a time per endpoint (a lease row)."""
    now = timezone.now()
    lease = timedelta(seconds=2 * settings.WEBHOOK_TIMEOUT + LEASE_SLACK)
    taken = WebhookEndpoint.objects.filter(
        Q(delivering_until__isnull=True) | Q(delivering_until__lt=now),
        pk=endpoint_id, enabled=True,
    ).update(delivering_until=now + lease)
    if not taken:
        return 0
    attempts = 0
    try:
        # One at a time, re-reading: a message queued meanwhile goes out in
        # this run too; a failed one is due again only later.
        while attempts < BATCH and (delivery := due(endpoint_id).first()) is not None:
            endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True).first()
            if endpoint is None:
                break
            attempt(endpoint, delivery)
            attempts += 1
            WebhookEndpoint.objects.filter(pk=endpoint_id).update(
                delivering_until=timezone.now() + lease)
    finally:
        WebhookEndpoint.objects.filter(pk=endpoint_id).update(delivering_until=None,
                                                              dispatched_at=None)
    return attempts


@dataclass
class Answer:
    status: int
    excerpt: str


def signed_headers(endpoint: WebhookEndpoint, event_id: str, body: str) -> dict[str, str]:
    now = datetime.now(UTC)
    signatures = " ".join(Webhook(s).sign(event_id, now, body) for s in endpoint.signing_secrets)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": "storeplatform-webhooks/1",
    }


def post(url: str, body: str, headers: dict[str, str]) -> Answer:
    """POST to ``url`` through an address we checked (raises AddressRefused),
    never following redirects; reads at most EXCERPT_BYTES of the answer."""
    parts = urlsplit(url)
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    timeout = urllib3.Timeout(connect=settings.WEBHOOK_TIMEOUT, read=settings.WEBHOOK_TIMEOUT)
    host_header = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        host_header += f":{parts.port}"
    last_error: Exception | None = None
    for address in checked_addresses(url):
        if parts.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                address, port, timeout=timeout, retries=False, maxsize=1,
                server_hostname=host, assert_hostname=host, cert_reqs="CERT_REQUIRED",
            )
        else:
            pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False,
                                              maxsize=1)
        try:
            response = pool.urlopen(
                "POST", path, body=body.encode(), headers={**headers, "host": host_header},
                redirect=False, preload_content=False, assert_same_host=False,
            )
            try:
                excerpt = response.read(EXCERPT_BYTES, decode_content=True)
            finally:
                response.release_conn()
            return Answer(response.status, excerpt.decode("utf-8", "replace"))
        except urllib3.exceptions.NewConnectionError as exc:
            last_error = exc  # try the host's next address
        finally:
            pool.close()
    raise last_error or OSError(f"could not connect to {host}")


def attempt(endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> DeliveryAttempt:
    """One try: sign, send, record; then succeeded, retry later, or give up."""
    number = delivery.attempts + 1
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True)
    started = timezone.now()
    clock = time.monotonic()
    record = DeliveryAttempt(delivery=delivery, number=number, started_at=started)
    try:
        answer = post(endpoint.url, body, signed_headers(endpoint, delivery.event_id, body))
        record.status_code = answer.status
        record.response_excerpt = answer.excerpt
        outcome = "delivered" if record.ok else "failed"
    except AddressRefused as exc:
        record.error = exc.message[:300]
        outcome = "refused"
    except WebhookError as exc:
        record.error = exc.message[:300]
        outcome = "failed"
    except Exception as exc:  # urllib3/ssl/socket errors: the endpoint did not answer
        record.error = f"{type(exc).__name__}: {exc}"[:300]
        outcome = "failed"
    record.duration_ms = int((time.monotonic() - clock) * 1000)
    now = timezone.now()
    with transaction.atomic():
        record.save()
        delivery.attempts = number
        delivery.last_status_code = record.status_code
        if outcome == "delivered":
            delivery.status = WebhookDelivery.SUCCEEDED
            delivery.finished_at = now
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
        else:
            retry_at = now + timedelta(seconds=retry_delay(number))
            if retry_at > delivery.created_at + timedelta(seconds=settings.WEBHOOK_RETRY_WINDOW):
                delivery.status = WebhookDelivery.FAILED
                delivery.finished_at = now
                outcome = "gave_up" if outcome == "failed" else outcome
            else:
                delivery.next_attempt_at = retry_at
        delivery.save(update_fields=["attempts", "last_status_code", "status", "finished_at",
                                     "next_attempt_at"])
        if outcome != "delivered":
            _count_failure(endpoint, now)  # may disable it, cancelling what is pending
    DELIVERIES.labels(outcome).inc()
    if number > 1:
        RETRIES.labels(outcome).inc()
    log.info("webhook endpoint=%s delivery=%s event=%s attempt=%s %s (%s) in %d ms",
             endpoint.pk, delivery.pk, delivery.event_id, number, outcome,
             record.status_code or record.error, record.duration_ms)
    return record


def retry_delay(attempts_made: int) -> float:
    """Seconds before the next try: WEBHOOK_RETRY_BASE doubled per attempt, capped."""
    return min(settings.WEBHOOK_RETRY_BASE * 2 ** (attempts_made - 1),
               settings.WEBHOOK_RETRY_MAX_DELAY)


def _count_failure(endpoint: WebhookEndpoint, now: datetime) -> None:
    """Start the endpoint's failure clock; disable it once it ran past
    WEBHOOK_DISABLE_AFTER without a single success."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(
        failing_since=now)
    since = WebhookEndpoint.objects.values_list("failing_since", flat=True).get(pk=endpoint.pk)
    if since and now - since >= timedelta(seconds=settings.WEBHOOK_DISABLE_AFTER):
        disable(endpoint, since)


def disable(endpoint: WebhookEndpoint, since: datetime) -> None:
    """Disable a failing endpoint, cancel what it still had to receive, and
    tell its owner by e-mail (sent by the outbox like every notification)."""
    reason = (f"Every delivery failed since {since:%Y-%m-%d %H:%M} UTC, so the endpoint "
              "was disabled. Fix it, then enable it again on your account page.")
    if not WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
            enabled=False, disabled_reason=reason):
        return
    WebhookDelivery.objects.filter(endpoint=endpoint, status=WebhookDelivery.PENDING).update(
        status=WebhookDelivery.CANCELLED, finished_at=timezone.now())
    owner = endpoint.owner
    log.warning("webhook endpoint=%s disabled after failing since %s", endpoint.pk, since)
    if owner.email:
        page = f"{settings.PLATFORM_URL}/accounts/webhooks/{endpoint.pk}/"
        OutgoingEmail.objects.create(
            user=owner, to=owner.email, event_type="webhook.disabled",
            event_id=f"endpoint-disabled-{endpoint.pk}-{int(since.timestamp())}",
            subject=f"Webhook endpoint disabled: {endpoint.url}"[:200],
            body=(f"Hello,\n\nyour webhook endpoint {endpoint.url} failed every delivery "
                  f"since {since:%Y-%m-%d %H:%M} UTC, so we disabled it.\n\n"
                  f"See its delivery log and enable it again at\n{page}\n"),
        )
