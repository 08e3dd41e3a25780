"""Operators' view of accounts: users (never deleted with live stores),
invitations (STORE_SIGNUP=invite), webhook endpoints with their delivery
log, and notification e-mails."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from stores import account_services, webhooks
from stores import constants as c
from stores.clientip import client_ip
from stores.models import (
    Account,
    DeliveryAttempt,
    Invitation,
    OutgoingEmail,
    Store,
    WebhookDelivery,
    WebhookEndpoint,
)
from stores.services import Actor


def _base_url(request) -> str:
    return f"{request.scheme}://{request.get_host()}"


class InvitationForm(forms.ModelForm):
    class Meta:
        model = Invitation
        fields = ["email", "note"]

    def clean_email(self) -> str:
        email = account_services.normalize_email(self.cleaned_data["email"])
        if account_services.email_taken(email):
            raise forms.ValidationError(f"{email} already has an account.")
        return email


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "created_by", "created_at", "sent_at", "accepted_at", "accepted_by"]
    search_fields = ["email"]
    form = InvitationForm
    actions = ["send_again"]

    def has_change_permission(self, request, obj=None):
        return obj is None  # an invitation is sent, not edited

    def save_model(self, request, obj, form, change):
        """Adding an invitation sends it (the link is signed, not stored)."""
        invitation = account_services.invite(
            Actor(request.user, ip=client_ip(request), via="admin"), obj.email, obj.note,
            base_url=_base_url(request))
        obj.pk = invitation.pk
        if not Invitation.objects.filter(pk=obj.pk, sent_at__isnull=False).exists():
            self.message_user(request, f"The invitation e-mail to {obj.email} could not be "
                              "sent; use 'Send again' later.", messages.WARNING)

    @admin.action(description="Send the selected invitations again")
    def send_again(self, request, queryset):
        for invitation in queryset.filter(accepted_at__isnull=True):
            if account_services.send_invitation(invitation, base_url=_base_url(request)):
                self.message_user(request, f"Sent to {invitation.email}.")
            else:
                self.message_user(request, f"Could not send to {invitation.email}.",
                                  messages.WARNING)


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["user", "verification_required", "email_verified_at", "created_at"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user"]
    readonly_fields = ["user", "created_at"]


class DeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = ["event_id", "event_type", "status", "attempts", "last_status_code",
              "next_attempt_at", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ["-id"]

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-id")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "owner", "enabled", "failing_since", "created_at"]
    list_filter = ["enabled"]
    search_fields = ["url", "owner__username"]
    list_select_related = ["owner"]
    # Never the secrets, not even encrypted.
    fields = ["owner", "url", "description", "event_types", "enabled", "disabled_reason",
              "failing_since", "created_at"]
    readonly_fields = ["owner", "url", "event_types", "disabled_reason", "failing_since",
                       "created_at"]
    inlines = [DeliveryInline]

    def has_add_permission(self, request):
        return False  # owners register endpoints; the URL checks run there


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ["number", "started_at", "status_code", "duration_ms", "error", "response_excerpt"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "endpoint", "event_id", "event_type", "status", "attempts",
                    "last_status_code"]
    list_filter = ["status", "event_type"]
    search_fields = ["event_id", "endpoint__url"]
    list_select_related = ["endpoint"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    inlines = [AttemptInline]
    actions = ["redeliver"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Redeliver the selected messages")
    def redeliver(self, request, queryset):
        for delivery in queryset.select_related("endpoint"):
            try:
                webhooks.redeliver(delivery)
                self.message_user(request, f"{delivery.event_id} will be sent again.")
            except webhooks.WebhookError as exc:
                self.message_user(request, f"{delivery.event_id}: {exc.message}",
                                  messages.WARNING)


@admin.register(OutgoingEmail)
class OutgoingEmailAdmin(admin.ModelAdmin):
    list_display = ["created_at", "to", "event_type", "subject", "status", "attempts", "sent_at"]
    list_filter = ["status", "event_type"]
    search_fields = ["to", "subject", "store_id"]
    readonly_fields = [f.name for f in OutgoingEmail._meta.fields]

    def has_add_permission(self, request):
        return False


# -- users -----------------------------------------------------------------------------
# Django's own user admin would delete a user's stores as rows (the foreign
# key cascades), leaving their namespaces running and nothing audited. The
# rule is the account page's: a user with live stores cannot be deleted;
# their stores are deleted by the platform first.
User = get_user_model()


class PlatformUserAdmin(UserAdmin):
    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Store rows are never deleted through admin (StoreAdmin), so Django
        # counts them as a permission the operator lacks. Deleted stores'
        # rows may go with their owner, as "delete my account" does; live
        # ones are named instead, to be deleted by the platform first.
        perms_needed = set(perms_needed) - {Store._meta.verbose_name}
        live = Store.objects.filter(owner__in=list(objs), status__in=list(c.LIVE_STATES))
        protected = [*protected, *(f"Store {s.name} ({s.id}), {s.status}: delete it first "
                                   "(Stores, 'Delete selected stores')"
                                   for s in live.order_by("created_at"))]
        return deleted, counts, perms_needed, protected


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, PlatformUserAdmin)
