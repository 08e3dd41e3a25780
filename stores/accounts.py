"""The owner's API tokens page: create a token with a name and a lifetime
(shown once), list them by prefix with when they were created, last used
and expire, and revoke them. Self-contained, so a fuller account page can
be built around it later."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from stores import services
from stores.api.auth import create_token
from stores.clientip import client_ip
from stores.models import ApiToken

LIFETIMES = [(7, "7 days"), (30, "30 days"), (90, "90 days"), (365, "1 year")]


class NewTokenForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="What the token is for, e.g. “CI deploys”.")
    days = forms.TypedChoiceField(choices=LIFETIMES, coerce=int, initial=30,
                                  label="Expires after")

    def clean_days(self) -> int:
        days = self.cleaned_data["days"]
        if days > settings.API_TOKEN_MAX_DAYS:
            raise forms.ValidationError(
                f"Tokens may live at most {settings.API_TOKEN_MAX_DAYS} days here.")
        return days


def _actor(request) -> services.Actor:
    return services.Actor(request.user, ip=client_ip(request), via="web")


@never_cache  # the new token is on the page once; no cache may keep it
@login_required
@require_http_methods(["GET", "POST"])
def tokens(request):
    form, new_token = NewTokenForm(), None
    if request.method == "POST":
        form = NewTokenForm(request.POST)
        if form.is_valid():
            row, new_token = create_token(request.user, form.cleaned_data["name"],
                                          timedelta(days=form.cleaned_data["days"]))
            services.audit(_actor(request), "create_token", "", name=row.name, prefix=row.prefix)
            form = NewTokenForm()
    return render(request, "accounts/tokens.html", {
        "form": form, "new_token": new_token,
        "tokens": ApiToken.objects.filter(user=request.user).order_by("-created"),
    }, status=400 if form.errors else 200)


@login_required
@require_POST
def revoke_token(request, prefix: str):
    revoked, _ = ApiToken.objects.filter(user=request.user, token_key=prefix).delete()
    if revoked:
        services.audit(_actor(request), "revoke_token", "", prefix=prefix)
        messages.success(request, f"Token {prefix}… revoked: it no longer works.")
    else:
        messages.error(request, "No such token (already revoked or expired?).")
    return redirect("tokens")
