"""The Domains card of the store page (issue 11): its live fragment and the
forms behind its buttons. The rules live in stores.domains, shared with the
API and the admin; these views only translate the request and say how it
went, like the other store actions."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from stores import constants as c
from stores import domains
from stores.models import Domain
from stores.services import StoreRequestError
from stores.views import _actor, get_store_for_user

IN_FLIGHT = {c.DOMAIN_PENDING, c.DOMAIN_VERIFIED, c.DOMAIN_REMOVING}


@login_required
@require_GET
def card(request, store_id: str):
    """The card's body; it polls itself while something is in flight."""
    store = get_store_for_user(request.user, store_id)
    rows = list(Domain.objects.filter(store=store).select_related("store"))
    return render(request, "stores/_domains_list.html", {
        "store": store,
        "domains": [(d, domains.dns_records(d)) for d in rows],
        "polling": store.is_busy or any(d.status in IN_FLIGHT for d in rows),
    })


def _domain_action(request, store_id: str, domain_id: int, action, done: str):
    store = get_store_for_user(request.user, store_id)
    domain = get_object_or_404(Domain.objects.select_related("store"), pk=domain_id, store=store)
    try:
        result = action(_actor(request), domain)
        messages.success(request, done.format(domain=domain.hostname, result=result))
    except StoreRequestError as exc:
        messages.error(request, exc.message)
    return redirect("stores:detail", store_id=store.id)


@login_required
@require_POST
def add(request, store_id: str):
    store = get_store_for_user(request.user, store_id)
    try:
        domain = domains.add_domain(_actor(request), store, request.POST.get("hostname", ""))
        messages.success(request, f"{domain.hostname} added: create the DNS records below, "
                                  "then verify.")
    except StoreRequestError as exc:
        messages.error(request, exc.message)
    return redirect("stores:detail", store_id=store.id)


@login_required
@require_POST
def verify(request, store_id: str, domain_id: int):
    def check(actor, domain):
        domain = domains.verify_domain(actor, domain)
        if domain.status == c.DOMAIN_PENDING and domain.last_error:
            raise StoreRequestError(f"{domain.hostname} is not verified yet: "
                                    f"{domain.last_error}")
        return domain

    return _domain_action(request, store_id, domain_id, check,
                          "{domain} is verified: the store will answer there shortly.")


@login_required
@require_POST
def make_primary(request, store_id: str, domain_id: int):
    return _domain_action(request, store_id, domain_id, domains.make_primary,
                          "{domain} becomes the store's address.")


@login_required
@require_POST
def remove(request, store_id: str, domain_id: int):
    return _domain_action(request, store_id, domain_id, domains.remove_domain,
                          "{domain} is being removed.")
