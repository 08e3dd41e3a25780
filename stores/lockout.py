"""The answer to a sign-in refused by django-axes (AXES_LOCKOUT_CALLABLE):
429 with Retry-After, as JSON for the API and as the sign-in form, with the
user name kept and the wait spelled out, for /login/ and /admin/login/."""

from __future__ import annotations

import math

from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.db.models import Max, Q
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone

from stores.clientip import client_ip


def seconds_left(request, username: str | None) -> int:
    """Until the newest counted failure of this account or address leaves
    the cool-off window: then the lockout is over."""
    cool_off = get_cool_off(request)
    match = Q(ip_address=client_ip(request))
    if username:
        match |= Q(username=username)
    newest = AccessAttempt.objects.filter(match).aggregate(newest=Max("attempt_time"))["newest"]
    if cool_off is None or newest is None:
        return int(cool_off.total_seconds()) if cool_off else 60
    return max(1, math.ceil((newest + cool_off - timezone.now()).total_seconds()))


def message(wait: int) -> str:
    minutes = math.ceil(wait / 60)
    when = f"{minutes} minute{'s' if minutes != 1 else ''}" if wait >= 60 else f"{wait} seconds"
    return (f"Too many failed sign-ins for this account or from this address. "
            f"Sign-in is paused: try again in {when}.")


def lockout_response(request, original_response=None, credentials=None):
    username = get_client_username(request, credentials) or ""
    wait = seconds_left(request, username)
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message(wait)}, status=429)
    else:
        response = render(request, "registration/login_locked.html", {
            "message": message(wait), "username": username, "action": request.path,
            "next": request.POST.get("next", "") if request.method == "POST" else "",
        }, status=429)
    response["Retry-After"] = str(wait)
    return response
