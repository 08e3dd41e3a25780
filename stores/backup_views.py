"""The Backups card of the store page (issue 12): its live fragment, "Back
up now", and a restore behind a confirmation that says what it replaces.
The rules live in stores.services, shared with the API and the admin."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from provisioning import backups as store_backups
from stores import constants as c
from stores import ratelimits, services
from stores.models import Backup
from stores.permissions import is_store_id
from stores.views import _actor, get_store_for_user

SHOWN = 10  # the newest backups on the card; the API lists them all


@login_required
@require_GET
def card(request, store_id: str):
    """The card's body; it polls itself while a backup or restore runs."""
    store = get_store_for_user(request.user, store_id)
    rows = list(Backup.objects.filter(store=store)[:SHOWN])
    last_good = Backup.objects.filter(store=store, status=c.BACKUP_SUCCEEDED).first()
    return render(request, "stores/_backups_list.html", {
        "store": store, "backups": rows, "last_good": last_good,
        "missing_setting": store_backups.missing_setting(),
        "can_back_up": store.status in c.BACKUP_STATES,
        "can_restore": store.status in c.RESTORABLE_STATES,
        "polling": store.is_busy or any(b.status in c.BACKUP_OPEN_STATES for b in rows),
    })


@login_required
@require_POST
def back_up(request, store_id: str):
    store = get_store_for_user(request.user, store_id)
    try:
        backup = services.back_up_store(_actor(request), store)
        messages.success(request, f"Backing up {store.name} (backup {backup.id}).")
    except services.StoreRequestError as exc:
        messages.error(request, exc.message)
    return redirect("stores:detail", store_id=store.id)


@login_required
@require_http_methods(["GET", "POST"])
def restore(request, store_id: str, backup_id: str):
    """GET: what the restore replaces, to confirm; POST: start it."""
    store = get_store_for_user(request.user, store_id)
    if not is_store_id(backup_id):  # backup ids have the same shape as store ids
        raise Http404("No such backup.")
    backup = get_object_or_404(Backup, pk=backup_id, store=store)
    if request.method == "GET":
        return render(request, "stores/confirm_restore.html", {
            "store": store, "backup": backup, "safety": store.status != c.FAILED})
    try:
        services.restore_store(_actor(request), store, backup)
        messages.success(request, f"Restoring {store.name} from backup {backup.id}.")
    except services.StoreRequestError as exc:
        messages.error(request, exc.message)
    return redirect("stores:detail", store_id=store.id)


@login_required
@require_POST
def clone(request, store_id: str):
    """A new store from the latest good backup (or the one chosen)."""
    store = get_store_for_user(request.user, store_id)
    try:
        ratelimits.check(request, "create")
        copy = services.clone_store(_actor(request), store, request.POST.get("name", ""),
                                    request.POST.get("backup_id") or None)
    except (services.StoreRequestError, ratelimits.RateLimited) as exc:
        messages.error(request, exc.message)
        return redirect("stores:detail", store_id=store.id)
    messages.success(request, f"Creating {copy.name} from a backup of {store.name}.")
    return redirect("stores:detail", store_id=copy.id)
