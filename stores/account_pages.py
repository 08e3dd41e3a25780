"""The account pages: sign up, verify the address, reset or change the
password (Django's own views), the account page with notification settings
and webhook endpoints, and deleting the account.

API tokens have a page of their own (/accounts/tokens/, stores.accounts);
the account page links to it.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_http_methods, require_POST

from stores import account_services, notification_types, ratelimits, webhooks
from stores import constants as c
from stores.account_forms import (
    DeleteAccountForm,
    EmailChangeForm,
    EmailEventsForm,
    EndpointEventsForm,
    EndpointForm,
    SignupForm,
)
from stores.clientip import client_ip
from stores.models import Account, Store, WebhookDelivery, WebhookEndpoint
from stores.services import Actor

log = logging.getLogger(__name__)

DELIVERY_LOG_SIZE = 50


def _base_url(request) -> str:
    """Links in mails sent while answering a request point where it came to."""
    return f"{request.scheme}://{request.get_host()}"


def _rate_limited(request, template: str, context: dict, exc: ratelimits.RateLimited):
    context["form_error"] = exc.message
    response = render(request, template, context, status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response


# -- sign-up -------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
def signup(request):
    mode = account_services.signup_mode()
    if request.user.is_authenticated:
        return redirect("stores:dashboard")
    invitation = None
    token = request.GET.get("invite") or request.POST.get("invite") or ""
    if mode == account_services.CLOSED:
        return render(request, "accounts/signup_closed.html", {
            "message": "Sign-up is closed on this platform. Ask an operator for an account."},
            status=403)
    if mode == account_services.INVITE:
        if not token:
            return render(request, "accounts/signup_closed.html", {
                "message": "Sign-up here is by invitation. Open the link in your "
                           "invitation e-mail, or ask an operator for one."}, status=403)
        try:
            invitation = account_services.invitation_for(token)
        except account_services.AccountError as exc:
            return render(request, "accounts/signup_closed.html", {"message": exc.message},
                          status=exc.status)
    context = {"mode": mode, "invite": token if invitation else ""}
    if request.method == "GET":
        context["form"] = SignupForm(invitation=invitation)
        return render(request, "accounts/signup.html", context)

    form = SignupForm(request.POST, invitation=invitation)
    context["form"] = form
    try:
        ratelimits.check(request, "sign-up", keys=("ip",))
    except ratelimits.RateLimited as exc:
        return _rate_limited(request, "accounts/signup.html", context, exc)
    if not form.is_valid():
        return render(request, "accounts/signup.html", context, status=400)
    try:
        user = account_services.create_account(
            form.cleaned_data["email"], form.cleaned_data["password1"], invitation=invitation,
            ip=client_ip(request))
    except account_services.AccountError as exc:
        context["form_error"] = exc.message
        return render(request, "accounts/signup.html", context, status=exc.status)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    if account_services.needs_verification(user):
        if account_services.send_verification(user, base_url=_base_url(request)):
            messages.success(request, f"Welcome! We sent a link to {user.email}: open it to "
                                      "verify your address before creating your first store.")
        else:
            messages.error(request, "Welcome! We could not send the verification e-mail just "
                                    "now; send it again from this page in a minute.")
        return redirect("account:home")
    messages.success(request, "Welcome! Create your first store.")
    return redirect("stores:dashboard")


@require_http_methods(["GET"])
def verify(request, uidb64: str, token: str):
    try:
        user = account_services.verify(uidb64, token)
    except account_services.AccountError as exc:
        return render(request, "accounts/verify_result.html",
                      {"ok": False, "message": exc.message}, status=exc.status)
    return render(request, "accounts/verify_result.html", {
        "ok": True, "message": f"{user.email} is verified. You can create stores now.",
    })


@login_required
@require_POST
def resend_verification(request):
    pending = Account.objects.filter(user=request.user).exclude(pending_email="").exists()
    if not pending and not account_services.needs_verification(request.user):
        messages.success(request, "Your address is already verified.")
        return redirect("account:home")
    try:
        ratelimits.check(request, "sign-up", keys=("user",))
    except ratelimits.RateLimited as exc:
        messages.error(request, exc.message)
        return redirect("account:home")
    if account_services.send_verification(request.user, base_url=_base_url(request)):
        messages.success(request, "We sent a new link.")
    else:
        messages.error(request, "The e-mail could not be sent just now; try again in a minute.")
    return redirect("account:home")


# -- password reset and change: Django's views, our templates and limits ------
class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/email/password_reset_body.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("account:password_reset_done")

    def post(self, request, *args, **kwargs):
        try:
            ratelimits.check(request, "password reset", keys=("ip", "post:email"))
        except ratelimits.RateLimited as exc:
            return _rate_limited(request, self.template_name,
                                 self.get_context_data(form=self.get_form()), exc)
        return super().post(request, *args, **kwargs)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("account:password_reset_complete")


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change_form.html"
    success_url = reverse_lazy("account:password_change_done")


password_reset = PasswordResetView.as_view()
password_reset_done = auth_views.PasswordResetDoneView.as_view(
    template_name="accounts/password_reset_done.html")
password_reset_confirm = PasswordResetConfirmView.as_view()
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="accounts/password_reset_complete.html")
password_change = PasswordChangeView.as_view()
password_change_done = auth_views.PasswordChangeDoneView.as_view(
    template_name="accounts/password_change_done.html")


# -- the account page ----------------------------------------------------------
def _account_context(request, **extra) -> dict:
    account = Account.objects.filter(user=request.user).first()
    email_events = account.email_events if account else notification_types.email_defaults()
    return {
        "account": account,
        "needs_verification": account is not None and not account.is_verified,
        "email_form": EmailEventsForm(initial={"email_events": email_events}),
        "email_change_form": EmailChangeForm(request.user),
        "endpoint_form": EndpointForm(),
        "endpoints": list(WebhookEndpoint.objects.filter(owner=request.user)),
        "event_types": list(notification_types.REGISTRY.values()),
        **extra,
    }


@login_required
@require_http_methods(["GET"])
def home(request):
    return render(request, "accounts/account.html", _account_context(request))


@login_required
@require_POST
def email_change(request):
    form = EmailChangeForm(request.user, request.POST)
    try:
        ratelimits.check(request, "sign-up", keys=("user",))
    except ratelimits.RateLimited as exc:
        messages.error(request, exc.message)
        return redirect("account:home")
    if form.is_valid():
        try:
            sent = account_services.request_email_change(
                request.user, form.cleaned_data["email"], base_url=_base_url(request))
        except account_services.AccountError as exc:
            form.add_error("email", exc.message)
        else:
            address = account_services.normalize_email(form.cleaned_data["email"])
            if sent:
                messages.success(request, f"We sent a link to {address}: open it to switch to "
                                          "that address.")
            else:
                messages.error(request, "The e-mail could not be sent just now; try again in "
                                        "a minute.")
            return redirect("account:home")
    return render(request, "accounts/account.html",
                  _account_context(request, email_change_form=form), status=400)


@login_required
@require_POST
def email_settings(request):
    form = EmailEventsForm(request.POST)
    if not form.is_valid():
        return render(request, "accounts/account.html",
                      _account_context(request, email_form=form), status=400)
    account_services.set_email_events(request.user, form.cleaned_data["email_events"])
    messages.success(request, "Your e-mail notifications are saved.")
    return redirect("account:home")


@login_required
@require_POST
def endpoint_create(request):
    form = EndpointForm(request.POST)
    if form.is_valid():
        try:
            endpoint, secret = webhooks.create_endpoint(
                request.user, form.cleaned_data["url"], form.cleaned_data["event_types"],
                form.cleaned_data["description"])
        except webhooks.WebhookError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            return render(request, "accounts/webhook_secret.html",
                          {"endpoint": endpoint, "secret": secret, "new": True})
    return render(request, "accounts/account.html",
                  _account_context(request, endpoint_form=form), status=400)


def _endpoint_for_user(user, endpoint_id: int) -> WebhookEndpoint:
    return get_object_or_404(WebhookEndpoint, pk=endpoint_id, owner=user)


def _endpoint_context(endpoint: WebhookEndpoint, **extra) -> dict:
    deliveries = list(
        endpoint.deliveries.prefetch_related("attempt_log").order_by("-id")[:DELIVERY_LOG_SIZE]
    )
    return {
        "endpoint": endpoint, "deliveries": deliveries,
        "events_form": EndpointEventsForm(initial={"event_types": endpoint.event_types}),
        **extra,
    }


@login_required
@require_http_methods(["GET"])
def endpoint_detail(request, endpoint_id: int):
    endpoint = _endpoint_for_user(request.user, endpoint_id)
    return render(request, "accounts/webhook.html", _endpoint_context(endpoint))


@login_required
@require_POST
def endpoint_events(request, endpoint_id: int):
    endpoint = _endpoint_for_user(request.user, endpoint_id)
    form = EndpointEventsForm(request.POST)
    if not form.is_valid():
        return render(request, "accounts/webhook.html",
                      _endpoint_context(endpoint, events_form=form), status=400)
    webhooks.update_endpoint(endpoint, event_types=form.cleaned_data["event_types"])
    messages.success(request, "Saved the endpoint's events.")
    return redirect("account:webhook", endpoint_id=endpoint.pk)


def _endpoint_action(request, endpoint_id: int, action, done: str):
    endpoint = _endpoint_for_user(request.user, endpoint_id)
    try:
        action(endpoint)
        messages.success(request, done)
    except webhooks.WebhookError as exc:
        messages.error(request, exc.message)
    return redirect("account:webhook", endpoint_id=endpoint.pk)


@login_required
@require_POST
def endpoint_test(request, endpoint_id: int):
    return _endpoint_action(request, endpoint_id, webhooks.send_test_event,
                            "A test event is on its way; it shows below in a moment.")


@login_required
@require_POST
def endpoint_enable(request, endpoint_id: int):
    enabled = request.POST.get("enabled") == "1"
    return _endpoint_action(
        request, endpoint_id, lambda e: webhooks.update_endpoint(e, enabled=enabled),
        "The endpoint is enabled." if enabled else "The endpoint is disabled.")


@login_required
@require_POST
def endpoint_rotate(request, endpoint_id: int):
    endpoint = _endpoint_for_user(request.user, endpoint_id)
    secret = webhooks.rotate_secret(endpoint)
    return render(request, "accounts/webhook_secret.html",
                  {"endpoint": endpoint, "secret": secret, "new": False})


@login_required
@require_http_methods(["GET", "POST"])
def endpoint_delete(request, endpoint_id: int):
    endpoint = _endpoint_for_user(request.user, endpoint_id)
    if request.method == "GET":
        return render(request, "accounts/webhook_delete.html", {"endpoint": endpoint})
    endpoint.delete()
    messages.success(request, f"Deleted the endpoint {endpoint.url}.")
    return redirect("account:home")


@login_required
@require_POST
def delivery_redeliver(request, endpoint_id: int, delivery_id: int):
    endpoint = _endpoint_for_user(request.user, endpoint_id)
    delivery = get_object_or_404(WebhookDelivery, pk=delivery_id, endpoint=endpoint)
    return _endpoint_action(request, endpoint.pk, lambda e: webhooks.redeliver(delivery),
                            f"{delivery.event_id} will be sent again.")


# -- deleting the account ------------------------------------------------------
@login_required
@require_http_methods(["GET", "POST"])
def delete_account(request):
    live = list(Store.objects.filter(owner=request.user, status__in=list(c.LIVE_STATES))
                .only("id", "name", "status"))
    form = DeleteAccountForm(request.user, request.POST or None)
    context = {"form": form, "live_stores": live}
    if request.method == "GET":
        return render(request, "accounts/delete_account.html", context)
    if not form.is_valid():
        return render(request, "accounts/delete_account.html", context, status=400)
    try:
        account_services.delete_account(
            Actor(request.user, ip=client_ip(request), via="web"), request.user)
    except account_services.AccountError as exc:
        context["form_error"] = exc.message
        return render(request, "accounts/delete_account.html", context, status=exc.status)
    # The user row is gone: end the session without touching it again.
    request.session.flush()
    return render(request, "accounts/account_deleted.html")

