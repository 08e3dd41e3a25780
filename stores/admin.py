"""Operators' view: every store, its timeline and commands, quotas, audit."""

import contextlib
import csv

from django.contrib import admin, messages
from django.http import HttpResponse
from django.utils.html import format_html

from stores import domains, fleet, services
from stores.clientip import client_ip
from stores.models import (
    ApiToken,
    AuditEntry,
    CommandRecord,
    Domain,
    FleetUpgrade,
    Orphan,
    Quota,
    Store,
    StoreEvent,
)
from stores.permissions import OPERATOR_PERMISSIONS, is_operator, is_store_id


def _actor(request) -> services.Actor:
    return services.Actor(request.user, ip=client_ip(request), via="admin")


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class EventInline(ReadOnlyInline):
    model = StoreEvent
    fields = ["created_at", "kind", "status_from", "status_to", "step", "message", "reason",
              "duration_ms", "actor"]
    readonly_fields = fields
    ordering = ["id"]


class CommandInline(ReadOnlyInline):
    model = CommandRecord
    fields = ["started_at", "tool", "command", "exit_code", "duration_ms", "stderr_tail"]
    readonly_fields = fields
    ordering = ["id"]

    @admin.display(description="command")
    def command(self, obj):
        return " ".join(obj.argv)

    @admin.display(description="stderr")
    def stderr_tail(self, obj):
        return obj.stderr[-500:]


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "engine", "status_badge", "status_reason", "owner", "host",
                    "current_step", "created_at", "ready_at"]
    list_filter = ["status", "engine", "owner"]
    list_select_related = ["owner"]
    search_fields = ["id", "name", "slug", "host", "owner__username", "status_message"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    readonly_fields = [f.name for f in Store._meta.fields]
    inlines = [EventInline, CommandInline]
    actions = ["retry_stores", "delete_stores", "force_fail_stores", "upgrade_stores",
               "rollback_stores", "fleet_upgrade"]

    def has_add_permission(self, request):
        return False  # stores are created through the services, with quotas

    def has_delete_permission(self, request, obj=None):
        # Django's own delete (the "delete selected" action, the delete
        # page) removes the row and leaves the namespace running with no
        # audit entry. Stores are deleted by the platform: delete_stores.
        return False

    def get_object(self, request, object_id, from_field=None):
        if not is_store_id(object_id):
            return None  # admin then says the store does not exist
        return super().get_object(request, object_id, from_field)

    # The same permissions the API asks of operators (stores.permissions).
    def has_platform_delete_permission(self, request):
        return is_operator(request.user, OPERATOR_PERMISSIONS["destroy"])

    def has_retry_permission(self, request):
        return is_operator(request.user, OPERATOR_PERMISSIONS["retry"])

    def has_upgrade_permission(self, request):
        return is_operator(request.user, OPERATOR_PERMISSIONS["upgrade"])

    def has_rollback_permission(self, request):
        return is_operator(request.user, OPERATOR_PERMISSIONS["rollback"])

    def has_force_fail_permission(self, request):
        return is_operator(request.user, OPERATOR_PERMISSIONS["force_fail"])

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return format_html('<span class="badge badge-{}">{}</span>', obj.status, obj.status)

    def _each(self, request, queryset, fn, verb):
        done, refused = 0, []
        for store in queryset:
            try:
                result = fn(store)
                done += 1 if result is not False else 0
                if result is False:
                    refused.append(f"{store.id}: not in a state that allows it")
            except services.StoreRequestError as exc:
                refused.append(f"{store.id}: {exc.message}")
        if done:
            self.message_user(request, f"{verb} {done} store(s).", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.WARNING)

    @admin.action(description="Retry selected failed stores",
                  permissions=["retry"])
    def retry_stores(self, request, queryset):
        self._each(request, queryset, lambda s: services.retry_store(_actor(request), s), "Retried")

    @admin.action(description="Delete selected stores",
                  permissions=["platform_delete"])
    def delete_stores(self, request, queryset):
        self._each(request, queryset, lambda s: services.delete_store(_actor(request), s),
                   "Deleting")

    @admin.action(description="Force-fail selected stuck stores",
                  permissions=["force_fail"])
    def force_fail_stores(self, request, queryset):
        self._each(request, queryset, lambda s: services.force_fail(_actor(request), s),
                   "Force-failed")


    @admin.action(description="Upgrade selected stores to the current chart",
                  permissions=["upgrade"])
    def upgrade_stores(self, request, queryset):
        self._each(request, queryset, lambda s: services.upgrade_store(_actor(request), s),
                   "Upgrading")

    @admin.action(description="Roll back selected stores to their previous revision",
                  permissions=["rollback"])
    def rollback_stores(self, request, queryset):
        def previous(store):
            revision = services.previous_good_revision(store)
            if revision is None:
                raise services.StoreRequestError("no earlier good revision")
            return services.rollback_store(_actor(request), store, revision.number)

        self._each(request, queryset, previous, "Rolling back")

    @admin.action(description="Fleet-upgrade every store of the selected stores' engines",
                  permissions=["upgrade"])
    def fleet_upgrade(self, request, queryset):
        for engine in sorted(set(queryset.values_list("engine", flat=True))):
            run = fleet.start(engine, _actor(request))
            self.message_user(request, f"Fleet upgrade of {run.total} {engine} store(s) to "
                              f"chart {run.target_version} started (run {run.pk}).")
        # Beat advances running runs every reconcile period; start now.
        with contextlib.suppress(Exception):  # broker down: beat gets to it
            fleet.advance_running.delay()


@admin.register(FleetUpgrade)
class FleetUpgradeAdmin(admin.ModelAdmin):
    list_display = ["created_at", "engine", "target_version", "status", "total", "done",
                    "failed_count", "finished_at"]
    list_filter = ["engine", "status"]
    readonly_fields = [f.name for f in FleetUpgrade._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.display(description="done")
    def done(self, obj):
        return obj.done_count

    @admin.display(description="failed")
    def failed_count(self, obj):
        return len(obj.failed)


@admin.register(Orphan)
class OrphanAdmin(admin.ModelAdmin):
    list_display = ["namespace", "store_id", "why", "first_seen", "last_seen", "removed_at"]
    list_filter = ["removed_at"]
    search_fields = ["namespace", "store_id"]
    readonly_fields = [f.name for f in Orphan._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    list_display = ["user", "max_stores", "note", "updated_at"]
    search_fields = ["user__username"]
    autocomplete_fields = ["user"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.audit(_actor(request), "quota", "", user=obj.user.get_username(),
                       max_stores=obj.max_stores)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        services.audit(_actor(request), "quota_deleted", "", user=obj.user.get_username(),
                       max_stores=obj.max_stores)

    def delete_queryset(self, request, queryset):
        for quota in queryset.select_related("user"):
            self.delete_model(request, quota)


@admin.register(CommandRecord)
class CommandRecordAdmin(admin.ModelAdmin):
    list_display = ["started_at", "store", "tool", "short_argv", "exit_code", "duration_ms"]
    list_filter = ["tool", "exit_code"]
    search_fields = ["store__id", "store__name"]
    list_select_related = ["store"]
    readonly_fields = [f.name for f in CommandRecord._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.display(description="command")
    def short_argv(self, obj):
        return " ".join(obj.argv)[:120]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_name", "action", "store_id", "ip", "via"]
    list_filter = ["action", "via"]
    search_fields = ["actor_name", "store_id", "ip"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]
    actions = ["export_csv"]

    def has_add_permission(self, request):
        return False

    # Append-only, for superusers too (the model refuses as well).
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Export selected entries as CSV")
    def export_csv(self, request, queryset):
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="audit.csv"'
        writer = csv.writer(response)
        writer.writerow(["time", "actor", "action", "store", "ip", "via", "details"])
        for entry in queryset.order_by("created_at"):
            writer.writerow([entry.created_at.isoformat(), entry.actor_name, entry.action,
                             entry.store_id, entry.ip or "", entry.via, entry.details])
        return response


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Operators see who has which tokens and may revoke them (delete);
    a token cannot be read: only its hash and prefix exist."""

    list_display = ["name", "user", "token_key", "created", "last_used_at", "expiry"]
    list_select_related = ["user"]
    search_fields = ["name", "token_key", "user__username"]
    fields = ["name", "user", "token_key", "created", "last_used_at", "expiry"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False  # made by their owner, shown once to them

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        services.audit(_actor(request), "revoke_token", "", user=obj.user.get_username(),
                       prefix=obj.token_key)

    def delete_queryset(self, request, queryset):
        for token in queryset.select_related("user"):
            self.delete_model(request, token)


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    """Custom domains (issue 11). Changes go through stores.domains, like the
    store page and the API: verify now, remove."""

    list_display = ["hostname", "store", "status", "is_primary", "certificate_state",
                    "last_checked_at", "last_error"]
    list_filter = ["status", "is_primary", "certificate_state"]
    search_fields = ["hostname", "store__id", "store__name", "store__owner__username"]
    list_select_related = ["store"]
    readonly_fields = [f.name for f in Domain._meta.fields]
    actions = ["verify_domains", "remove_domains"]

    def has_add_permission(self, request):
        return False  # owners add domains, with the checks of stores.domains

    def _each(self, request, queryset, fn, verb):
        done = 0
        for domain in queryset.select_related("store"):
            try:
                fn(_actor(request), domain)
                done += 1
            except services.StoreRequestError as exc:
                self.message_user(request, f"{domain.hostname}: {exc.message}", messages.WARNING)
        if done:
            self.message_user(request, f"{verb} {done} domain(s).", messages.SUCCESS)

    @admin.action(description="Verify the DNS of selected domains now")
    def verify_domains(self, request, queryset):
        self._each(request, queryset, domains.verify_domain, "Checked")

    @admin.action(description="Remove selected domains")
    def remove_domains(self, request, queryset):
        self._each(request, queryset, domains.remove_domain, "Removing")


# Accounts, invitations, webhooks and notification e-mails (issue 16).
from stores import account_admin  # noqa: E402, F401
