"""Server-rendered pages for store owners.

Live updates use htmx polling that sends only what changed: the page keeps a
cursor (the newest ``updated_at`` or event id it has), and the fragment
endpoints answer 204 No Content when nothing moved, so an idle page costs one
indexed query every two seconds and no HTML.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db.models import Max, OuterRef, Q, Subquery
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from provisioning import kube
from provisioning.engines import ENGINES, get_engine
from provisioning.errors import ProvisioningError
from stores import constants as c
from stores import ratelimits, services
from stores.clientip import client_ip
from stores.models import Backup, CredentialsUnreadable, Store, StoreCredentials
from stores.permissions import is_store_id

log = logging.getLogger(__name__)

PAGE_SIZE = 25
# The session key of a refused create form, shown once on the dashboard.
REFUSED_CREATE = "refused-create"
# How long after a store first became ready its page says "open it".
JUST_READY = timedelta(hours=1)
STORE_FIELDS = (
    "id", "name", "engine", "status", "status_reason", "status_message", "host", "current_step",
    "step_started_at", "created_at", "updated_at", "ready_at", "owner_id",
)


def get_store_for_user(user, store_id: str) -> Store:
    """The user's store, or 404: someone else's store does not exist for them."""
    if not is_store_id(store_id):
        raise Http404("No such store.")
    return get_object_or_404(Store, pk=store_id, owner=user)


def _actor(request) -> services.Actor:
    return services.Actor(request.user, ip=client_ip(request), via="web")


def _cursor(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def _parse_cursor(value: str | None) -> datetime | None:
    """A time a page sent back to us, in UTC; None for anything else (no
    offset, not a time, or one that leaves the calendar in UTC)."""
    try:
        parsed = datetime.fromisoformat(value) if value else None
        if parsed is None or parsed.tzinfo is None:
            return None
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _parse_event_id(value: str | None) -> int:
    """An event id a page sent back, or 0 (from the start) when it is not one."""
    if value and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return 0


def cluster_status() -> dict:
    """Is a cluster configured, and does it answer? Cached briefly: the
    dashboard asks on every load. When not, ``title`` is the title of the
    reason a new store would fail with, so the banner and the failure say
    the same thing."""
    status = cache.get("cluster-status") if _cache_ok() else None
    if status is None:
        try:
            status = {"ok": True, "version": kube.ping()}
        except ProvisioningError as exc:
            status = {"ok": False, "reason": exc.reason, "message": exc.message}
        except Exception as exc:  # a page must not fail because the cluster is odd
            log.warning("cluster check failed: %r", exc)
            status = {"ok": False, "reason": c.REASON_CLUSTER_UNREACHABLE,
                      "message": f"The cluster answered unexpectedly: {exc}"}
        if not status["ok"]:
            status["title"] = c.REASON_TITLES.get(
                status["reason"], c.REASON_TITLES[c.REASON_CLUSTER_UNREACHABLE])
        if _cache_ok():
            cache.set("cluster-status", status, 15)
    return status


def _cache_ok() -> bool:
    try:
        cache.get("ping")
        return True
    except Exception:
        return False


@login_required
@require_GET
def dashboard(request):
    # A refused create comes back here (Post/Redirect/Get) with what was typed.
    refused = request.session.pop(REFUSED_CREATE, None)
    extra = {"form_error": refused["message"], "form": refused["form"]} if refused else {}
    return render(request, "stores/dashboard.html", _dashboard_context(request, **extra))


# A row says when the store's newest backup failed (issue 12), not only its log.
LAST_BACKUP_STATUS = Subquery(
    Backup.objects.filter(store=OuterRef("pk")).exclude(status=c.BACKUP_EXPIRED)
    .order_by("-created_at").values("status")[:1])


def _dashboard_context(request, **extra) -> dict:
    """One page of the user's stores, newest first, by keyset: ``?before=``
    is the last row of the previous page (created_at|id). No COUNT and no
    OFFSET, so a page costs the same at 10 or 100,000 stores."""
    stores = (
        Store.objects.filter(owner=request.user).exclude(status=c.DELETED)
        .only(*STORE_FIELDS).order_by("-created_at", "id")  # the store_owner_created index
        .annotate(last_backup_status=LAST_BACKUP_STATUS)
    )
    created, _, last_id = request.GET.get("before", "").partition("|")
    before = _parse_cursor(created)
    if before is not None:
        stores = stores.filter(
            Q(created_at__lt=before) | Q(created_at=before, id__gt=last_id)
        )
    rows = list(stores[:PAGE_SIZE + 1])
    older = rows[PAGE_SIZE - 1] if len(rows) > PAGE_SIZE else None
    return {
        "stores": rows[:PAGE_SIZE],
        "older": f"{older.created_at.isoformat()}|{older.id}" if older else "",
        "first_page": before is None,
        "engines": list(ENGINES.values()),
        "cursor": _cursor(timezone.now()),
        "cluster": cluster_status(),
        "max_stores": services.max_stores_for(request.user),
        "name_min": c.NAME_MIN_LENGTH,
        "name_max": c.NAME_MAX_LENGTH,
        **extra,
    }


@login_required
@require_GET
def dashboard_changes(request):
    """Rows of the user's stores that changed since the cursor, or 204."""
    since = _parse_cursor(request.GET.get("since"))
    if since is None:
        return HttpResponse(status=400)
    changed = list(
        Store.objects.filter(owner=request.user, updated_at__gt=since)
        .only(*STORE_FIELDS).annotate(last_backup_status=LAST_BACKUP_STATUS)
        .order_by("updated_at")[:PAGE_SIZE]
    )
    if not changed:
        return HttpResponse(status=204)
    return render(request, "stores/_dashboard_changes.html", {
        "changed": changed, "cursor": _cursor(changed[-1].updated_at), "since": since,
    })


@login_required
@require_POST
def create(request):
    try:
        ratelimits.check(request, "create")
        store = services.create_store(
            _actor(request), request.POST.get("name", ""), request.POST.get("engine", "")
        )
    except ratelimits.RateLimited as exc:
        # Nothing was looked at: answer 429 with Retry-After right here.
        context = _dashboard_context(request, form_error=exc.message, form=request.POST)
        response = render(request, "stores/dashboard.html", context, status=429)
        response["Retry-After"] = str(exc.retry_after)
        return response
    except services.StoreRequestError as exc:
        # Back to the dashboard, so that a reload does not send the form again.
        request.session[REFUSED_CREATE] = {
            "message": exc.message,
            "form": {"name": request.POST.get("name", ""),
                     "engine": request.POST.get("engine", "")},
        }
        return redirect("stores:dashboard")
    messages.success(request, f"{store.name} is on its way.")
    return redirect("stores:detail", store_id=store.id)


@login_required
@require_GET
def address(request):
    """The address a store of the typed name would get (the create form asks
    as one types), or why the name will be refused."""
    name = request.GET.get("name", "")
    if not name.strip():
        return HttpResponse("")
    try:
        return render(request, "stores/_address.html", {"url": services.address_for(name)})
    except services.StoreRequestError as exc:
        return render(request, "stores/_address.html", {"error": exc.message})


def _events_after(store: Store, after: int) -> list:
    return list(store.events.filter(id__gt=after).order_by("id"))


def _versions_context(store: Store) -> dict:
    """The Versions card: the revisions the platform recorded after the last
    operation that changed the release (no helm, no cluster on a page view)."""
    return {
        "revisions": list(store.revisions.all()) if store.status != c.DELETED else [],
        "current_chart": get_engine(store.engine).chart_version,
        "can_change": store.status in c.UPGRADABLE_STATES,
    }


def _detail_context(store: Store, after: int = 0, events: list | None = None) -> dict:
    """The store and its events after event id ``after`` (all of them: 0).
    The Versions card comes with the whole page, and with a live update that
    carries a status change (operations record revisions before they end)."""
    events = _events_after(store, after) if events is None else events
    status_events = [e for e in events if e.kind == c.EVENT_STATUS]
    context = {
        "store": store,
        "events": events,
        "last_event_id": events[-1].id if events else after,
        "has_credentials": StoreCredentials.objects.filter(store=store).exists(),
        "just_ready": store.status == c.READY and store.ready_at is not None
        and timezone.now() - store.ready_at < JUST_READY,
        "status_changed": bool(status_events),
        # Messages such as "... is on its way." go once the operation ends.
        "operation_ended": bool(status_events) and status_events[-1].status_to
        not in c.BUSY_STATES,
    }
    if after == 0 or status_events:
        context.update(_versions_context(store))
    return context


@login_required
@require_GET
def detail(request, store_id: str):
    store = get_store_for_user(request.user, store_id)
    return render(request, "stores/detail.html", _detail_context(store))


@login_required
@require_GET
def detail_changes(request, store_id: str):
    """New timeline events and the refreshed header, or 204 if nothing moved."""
    store = get_store_for_user(request.user, store_id)
    after = _parse_event_id(request.GET.get("after"))
    seen = _parse_cursor(request.GET.get("seen"))
    events = _events_after(store, after)
    if not events and seen and store.updated_at <= seen:
        return HttpResponse(status=204)  # one query for the store, one for events
    return render(request, "stores/_detail_changes.html", _detail_context(store, after, events))


@never_cache  # a password: no cache may keep it
@login_required
@require_GET
def credentials(request, store_id: str):
    store = get_store_for_user(request.user, store_id)
    creds = StoreCredentials.objects.filter(store=store).first()
    if creds is None:
        raise Http404("No credentials yet")
    try:
        values = creds.values
    except CredentialsUnreadable as exc:
        return render(request, "stores/_credentials_unreadable.html", {"message": exc.message},
                      status=409)
    services.audit(_actor(request), "view_credentials", store.id)
    return render(request, "stores/_credentials.html", {"store": store, "creds": values})


@login_required
@require_GET
def revisions(request, store_id: str):
    """The Versions card on its own."""
    store = get_store_for_user(request.user, store_id)
    return render(request, "stores/_versions.html", {"store": store, **_versions_context(store)})


def _store_action(request, store_id: str, action, done: str):
    """Run a service on the user's store, say how it went, back to its page."""
    store = get_store_for_user(request.user, store_id)
    try:
        action(_actor(request), store)
        messages.success(request, done)
    except (services.StoreRequestError, ProvisioningError) as exc:
        messages.error(request, exc.message)
    return redirect("stores:detail", store_id=store.id)


def _next_revision(store: Store) -> int:
    """The number helm gives the revision an upgrade or rollback makes."""
    return (store.revisions.aggregate(last=Max("number"))["last"] or 0) + 1


@login_required
@require_http_methods(["GET", "POST"])
def upgrade(request, store_id: str):
    """GET: what an upgrade would do, to confirm; POST: start it."""
    if request.method == "POST":
        return _store_action(request, store_id, services.upgrade_store, "Upgrade started.")
    store = get_store_for_user(request.user, store_id)
    try:
        version = services.check_upgradable(store)
    except services.StoreRequestError as exc:
        messages.error(request, exc.message)
        return redirect("stores:detail", store_id=store.id)
    return render(request, "stores/confirm_upgrade.html", {
        "store": store, "target_version": version, "next_revision": _next_revision(store),
    })


@login_required
@require_http_methods(["GET", "POST"])
def rollback(request, store_id: str):
    """GET: what a rollback to ``?revision=`` would do, to confirm; POST: start it."""
    revision = (request.POST if request.method == "POST" else request.GET).get("revision", "")
    store = get_store_for_user(request.user, store_id)  # 404 first for someone else's store
    # isdigit() alone accepts "²" and "³", which int() refuses; a revision
    # is a few ASCII digits (helm keeps STORE_HELM_HISTORY_MAX of them).
    if not (revision.isascii() and revision.isdigit() and len(revision) <= 9):
        messages.error(request, "Choose a revision to roll back to: one of the revision "
                                "numbers listed under Versions.")
        return redirect("stores:detail", store_id=store_id)
    if request.method == "POST":
        return _store_action(
            request, store_id,
            lambda actor, store: services.rollback_store(actor, store, int(revision)),
            f"Rolling back to revision {int(revision)}.",
        )
    try:
        target = services.check_rollback(store, int(revision))
    except services.StoreRequestError as exc:
        messages.error(request, exc.message)
        return redirect("stores:detail", store_id=store.id)
    return render(request, "stores/confirm_rollback.html", {
        "store": store, "target": target, "next_revision": _next_revision(store),
    })


@login_required
@require_POST
def retry(request, store_id: str):
    return _store_action(request, store_id, services.retry_store, "Trying again.")


@login_required
@require_http_methods(["GET", "POST"])
def delete(request, store_id: str):
    store = get_store_for_user(request.user, store_id)
    if request.method == "GET":
        return render(request, "stores/confirm_delete.html", {"store": store})
    try:
        ratelimits.check(request, "delete")
        services.delete_store(_actor(request), store)
        messages.success(request, f"Deleting {store.name}.")
    except ratelimits.RateLimited as exc:
        messages.error(request, exc.message)
        response = render(request, "stores/confirm_delete.html", {"store": store}, status=429)
        response["Retry-After"] = str(exc.retry_after)
        return response
    except services.StoreRequestError as exc:
        messages.error(request, exc.message)
    return redirect("stores:detail", store_id=store.id)


# --- Suspend and resume (issue 13) ---
# What each confirmation page says before the owner commits.
PAUSE_CONFIRMATIONS = {
    "suspend": {
        "title": "Suspend {name}?",
        "text": "The shop stops running: its pods go, so it uses no CPU or memory, and its "
                "address shows \"This store is paused\" to visitors. Its data, files and "
                "orders are kept; resume it whenever you like.",
        "button": "Yes, suspend {name}",
        "done": "Suspending {name}.",
    },
    "resume": {
        "title": "Resume {name}?",
        "text": "The shop starts again and is Ready once its storefront answers.",
        "button": "Yes, resume {name}",
        "done": "Resuming {name}.",
    },
}


def _confirmed_action(request, store_id: str, action: str, service):
    """GET: a confirmation page; POST: the service, then back to the store."""
    store = get_store_for_user(request.user, store_id)
    words = {k: v.format(name=store.name) for k, v in PAUSE_CONFIRMATIONS[action].items()}
    if request.method == "GET":
        return render(request, "stores/confirm_action.html",
                      {"store": store, "action": action, "words": words})
    try:
        service(_actor(request), store)
        messages.success(request, words["done"])
    except services.StoreRequestError as exc:
        messages.error(request, exc.message)
    return redirect("stores:detail", store_id=store.id)


@login_required
@require_http_methods(["GET", "POST"])
def suspend(request, store_id: str):
    return _confirmed_action(request, store_id, "suspend", services.suspend_store)


@login_required
@require_http_methods(["GET", "POST"])
def resume(request, store_id: str):
    return _confirmed_action(request, store_id, "resume", services.resume_store)
