"""Operators' view: every store, its timeline and commands, quotas, fleet
upgrades, orphans, audit.

Records the platform writes (stores, commands, fleet runs, orphans, audit
entries) are read-only here: they change through the services, by the
buttons and actions below, never by editing fields. Each operation (retry,
delete, force-fail, upgrade, roll back, fleet upgrades) needs its own
permission, the same the API asks of operators (stores.permissions).
"""

import contextlib
import csv

from django.contrib import admin, messages
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from provisioning.engines import ENGINES, get_engine
from stores import constants as c
from stores import domains, fleet, services
from stores.clientip import client_ip
from stores.models import (
    ApiToken,
    AuditEntry,
    Backup,
    CommandRecord,
    Domain,
    FleetUpgrade,
    Orphan,
    PoolPolicy,
    Quota,
    Store,
)
from stores.permissions import OPERATOR_PERMISSIONS, is_operator, is_store_id

admin.site.site_header = "storeplatform admin"
admin.site.site_title = "storeplatform admin"

# How many timeline entries the store page shows (newest); the API has all.
TIMELINE_LIMIT = 100


def _actor(request) -> services.Actor:
    return services.Actor(request.user, ip=client_ip(request), via="admin")


# The store page's buttons and the admin actions, by the API action whose
# operator permission they need.
OPERATIONS = ["retry", "upgrade", "rollback", "force_fail", "destroy"]


def may(request, operation: str) -> bool:
    return is_operator(request.user, OPERATOR_PERMISSIONS[operation])


def may_operate(request) -> bool:
    """Any operation at all: whether the store page shows its buttons."""
    return any(may(request, operation) for operation in OPERATIONS)


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record the platform writes: viewed here, never edited (no Save)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class CommandInline(admin.TabularInline):
    model = CommandRecord
    fields = ["started_at", "tool", "command", "exit_code", "duration_ms", "stderr_tail"]
    readonly_fields = fields
    ordering = ["id"]
    extra = 0
    can_delete = False
    classes = ["collapse"]
    verbose_name_plural = "helm and Kubernetes commands"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="command")
    def command(self, obj):
        return " ".join(obj.argv)

    @admin.display(description="stderr")
    def stderr_tail(self, obj):
        return obj.stderr[-500:]


def status_badge_html(status: str, label: str):
    return format_html('<span class="badge badge-{}" data-status="{}">{}</span>',
                       status, status, label)


class WarmPoolFilter(admin.SimpleListFilter):
    """Stores with no owner: the warm pool's, pooled or on their way there."""

    title = "warm pool"
    parameter_name = "pool"

    def lookups(self, request, model_admin):
        return [("yes", "In the warm pool"), ("no", "Owned")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(owner__isnull=self.value() == "yes")
        return queryset


@admin.register(PoolPolicy)
class PoolPolicyAdmin(admin.ModelAdmin):
    """The warm pool's size per engine (stores/pool.py): a row overrides the
    STORE_POOL_SIZE_<ENGINE> setting; beat builds or trims to it."""

    list_display = ["engine", "size", "in_pool", "updated_at"]

    @admin.display(description="pooled now")
    def in_pool(self, obj):
        # Kept suspended (STORE_POOL_SUSPENDED) or not, they wait to be claimed.
        return Store.objects.filter(owner__isnull=True, engine=obj.engine,
                                    status__in=[c.POOLED, c.SUSPENDED]).count()


@admin.register(Store)
class StoreAdmin(ReadOnlyAdmin):
    list_display = ["name", "id", "engine", "status_badge", "reason", "owner", "host",
                    "current_step", "created_at", "ready_at"]
    list_filter = ["status", "engine", WarmPoolFilter, "owner"]
    list_select_related = ["owner"]
    search_fields = ["id", "name", "slug", "host", "owner__username", "status_message"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    readonly_fields = [f.name for f in Store._meta.fields]
    # Every field is still there, folded under the summary the page leads with.
    fieldsets = [("All fields", {"fields": readonly_fields, "classes": ["collapse"]})]
    inlines = [CommandInline]
    change_form_template = "admin/stores/store/change_form.html"
    actions = ["retry_stores", "delete_stores", "force_fail_stores", "upgrade_stores",
               "rollback_stores", "fleet_upgrade", "suspend_stores", "resume_stores",
               "back_up_stores"]

    def has_delete_permission(self, request, obj=None):
        return False  # a store is deleted by the platform (cluster first), not as a row

    def get_object(self, request, object_id, from_field=None):
        if not is_store_id(object_id):
            return None  # admin then says the store does not exist
        return super().get_object(request, object_id, from_field)

    # The same permissions the API asks of operators (stores.permissions).
    def has_platform_delete_permission(self, request):
        return may(request, "destroy")

    def has_retry_permission(self, request):
        return may(request, "retry")

    def has_upgrade_permission(self, request):
        return may(request, "upgrade")

    def has_rollback_permission(self, request):
        return may(request, "rollback")

    def has_force_fail_permission(self, request):
        return may(request, "force_fail")

    def has_suspend_permission(self, request):
        return is_operator(request.user, OPERATOR_PERMISSIONS["suspend"])

    def has_resume_permission(self, request):
        return is_operator(request.user, OPERATOR_PERMISSIONS["resume"])

    def has_backup_permission(self, request):
        return is_operator(request.user, OPERATOR_PERMISSIONS["backup"])

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return status_badge_html(obj.status, obj.get_status_display())

    @admin.display(description="reason", ordering="status_reason")
    def reason(self, obj):
        return c.REASON_TITLES.get(obj.status_reason, obj.status_reason)

    # -- the store page: summary, timeline, buttons -------------------------
    def get_urls(self):
        return [
            path("<str:object_id>/operate/", self.admin_site.admin_view(self.operate_view),
                 name="stores_store_operate"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        store = self.get_object(request, object_id)
        extra = {}
        if store is not None:
            events = list(store.events.order_by("-id")[:TIMELINE_LIMIT])[::-1]
            extra = {
                "store": store,
                "events": events,
                "events_total": store.events.count() if len(events) == TIMELINE_LIMIT else
                len(events),
                "may_operate": may_operate(request),
                "buttons": self._buttons(request, store),
            }
        return super().change_view(request, object_id, form_url,
                                   {**extra, **(extra_context or {})})

    def _buttons(self, request, store: Store) -> list[dict]:
        """The operations the store's state allows, as the services see it,
        and the operator's permissions."""
        buttons = []
        if store.status in c.RETRYABLE_STATES:
            operation = store.operation or c.OP_PROVISION
            buttons.append({"action": "retry", "label": f"Retry the {operation}",
                            "primary": True})
        if store.status in c.UPGRADABLE_STATES and store.helm_revision is not None:
            version = get_engine(store.engine).chart_version
            if version != store.chart_version:
                buttons.append({"action": "upgrade", "label": f"Upgrade to chart {version}"})
            previous = services.previous_good_revision(store)
            if previous is not None:
                buttons.append({"action": "rollback", "revision": previous.number,
                                "label": f"Roll back to revision {previous.number}"})
        if store.status in c.BUSY_STATES:
            buttons.append({"action": "force_fail", "label": "Force-fail"})
        if store.status in c.DELETABLE_STATES:
            buttons.append({"action": "delete", "label": "Delete store…", "danger": True})
        return [b for b in buttons if may(request, BUTTON_OPERATIONS[b["action"]])]

    def operate_view(self, request, object_id):
        """POST an operation from the store page's buttons; a deletion asks first."""
        if not is_store_id(object_id):
            raise Http404
        store = get_object_or_404(Store, pk=object_id)
        change_url = reverse("admin:stores_store_change", args=[store.pk])
        action = request.POST.get("action") or request.GET.get("action", "")
        if action not in BUTTON_OPERATIONS:
            self.message_user(request, f"Unknown operation {action!r}.", messages.ERROR)
            return redirect(change_url)
        if not may(request, BUTTON_OPERATIONS[action]):
            permission = OPERATOR_PERMISSIONS[BUTTON_OPERATIONS[action]]
            self.message_user(request, f"This needs the permission {permission}.",
                              messages.ERROR)
            return redirect(change_url)
        if request.method == "GET" and action == "delete":
            return TemplateResponse(request, "admin/stores/store/confirm_delete.html", {
                **self.admin_site.each_context(request), "store": store, "opts": self.opts,
                "title": f"Delete {store.name}?", "change_url": change_url,
            })
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        actor = _actor(request)
        operations = {
            "retry": (lambda: services.retry_store(actor, store), "Retry requested."),
            "upgrade": (lambda: services.upgrade_store(actor, store), "Upgrade requested."),
            "rollback": (lambda: services.rollback_store(
                actor, store, _revision(request.POST.get("revision", ""))),
                "Rollback requested."),
            "delete": (lambda: services.delete_store(actor, store), "Deletion requested."),
            "force_fail": (lambda: services.force_fail(actor, store), "Marked failed."),
        }
        run, done = operations[action]
        try:
            result = run()
        except services.StoreRequestError as exc:
            self.message_user(request, exc.message, messages.WARNING)
        else:
            if result is False:
                self.message_user(request, "The store is no longer in a state that allows it.",
                                  messages.WARNING)
            else:
                self.message_user(request, done, messages.SUCCESS)
        return redirect(change_url)

    # -- actions on selected stores ------------------------------------------
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

    @admin.action(description="Retry selected failed stores", permissions=["retry"])
    def retry_stores(self, request, queryset):
        self._each(request, queryset, lambda s: services.retry_store(_actor(request), s), "Retried")

    @admin.action(description="Delete selected stores", permissions=["platform_delete"])
    def delete_stores(self, request, queryset):
        self._each(request, queryset, lambda s: services.delete_store(_actor(request), s),
                   "Deleting")

    @admin.action(description="Force-fail selected stuck stores", permissions=["force_fail"])
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

    @admin.action(description="Suspend selected stores (no pods; a paused page)",
                  permissions=["suspend"])
    def suspend_stores(self, request, queryset):
        self._each(request, queryset, lambda s: services.suspend_store(_actor(request), s),
                   "Suspending")

    @admin.action(description="Resume selected suspended stores",
                  permissions=["resume"])
    def resume_stores(self, request, queryset):
        self._each(request, queryset, lambda s: services.resume_store(_actor(request), s),
                   "Resuming")

    @admin.action(description="Back up selected stores now", permissions=["backup"])
    def back_up_stores(self, request, queryset):
        self._each(request, queryset, lambda s: services.back_up_store(_actor(request), s),
                   "Backing up")

    @admin.action(description="Fleet-upgrade the engine of the selected stores…",
                  permissions=["upgrade"])
    def fleet_upgrade(self, request, queryset):
        """To the fleet upgrade's own page, which says what it will do first."""
        engine = queryset.values_list("engine", flat=True).first() or ""
        return HttpResponseRedirect(
            f"{reverse('admin:stores_fleetupgrade_add')}?engine={engine}")


@admin.register(FleetUpgrade)
class FleetUpgradeAdmin(ReadOnlyAdmin):
    """Fleet upgrades: started from their own page (what, how many, in what
    batches, confirmed), followed live, stopped with a button. Beat advances
    running runs (stores.fleet.advance_running)."""

    list_display = ["created_at", "engine", "target_version", "status_badge", "progress",
                    "failed_count", "created_by", "finished_at"]
    list_filter = ["engine", "status"]
    readonly_fields = [f.name for f in FleetUpgrade._meta.fields]
    fieldsets = [("All fields", {"fields": readonly_fields, "classes": ["collapse"]})]
    change_form_template = "admin/stores/fleetupgrade/change_form.html"

    def has_add_permission(self, request):
        return may(request, "upgrade")

    def has_delete_permission(self, request, obj=None):
        # A finished run's row may go; a running one is stopped instead.
        running = obj is not None and obj.status == FleetUpgrade.RUNNING
        return not running and super().has_delete_permission(request, obj)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return status_badge_html(*FLEET_BADGES[obj.status])

    @admin.display(description="progress")
    def progress(self, obj):
        return f"{obj.done_count} of {obj.total}"

    @admin.display(description="failed")
    def failed_count(self, obj):
        return len(obj.failed)

    def get_urls(self):
        return [
            path("<int:run_id>/stop/", self.admin_site.admin_view(self.stop_view),
                 name="stores_fleetupgrade_stop"),
            path("<int:run_id>/progress/", self.admin_site.admin_view(self.progress_view),
                 name="stores_fleetupgrade_progress"),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        """Choose an engine and batches, see what will happen, confirm, start."""
        if not self.has_add_permission(request):
            self.message_user(request, "You may view fleet upgrades, not start them.",
                              messages.ERROR)
            return redirect("admin:stores_fleetupgrade_changelist")
        data = request.POST if request.method == "POST" else request.GET
        engines = [
            {"name": e.name, "title": e.title, "version": e.chart_version,
             "pending": fleet.pending(e.name, e.chart_version).count()}
            for e in ENGINES.values()
        ]
        choice = {
            "engine": data.get("engine") if data.get("engine") in ENGINES else "",
            "batch_size": _positive(data.get("batch_size"), 5),
            "canary": _positive(data.get("canary"), 1),
        }
        if request.method == "POST" and choice["engine"] and data.get("confirmed") == "yes":
            run = fleet.start(choice["engine"], _actor(request),
                              batch_size=choice["batch_size"], canary=choice["canary"])
            # Beat advances running runs every reconcile period; start now.
            with contextlib.suppress(Exception):  # broker down: beat gets to it
                fleet.advance_running.delay()
            self.message_user(request, f"Fleet upgrade of {run.total} {run.engine} store(s) "
                              f"to chart {run.target_version} started.", messages.SUCCESS)
            return redirect("admin:stores_fleetupgrade_change", run.pk)
        chosen = next((e for e in engines if e["name"] == choice["engine"]), None)
        context = {
            **self.admin_site.each_context(request), "opts": self.opts,
            "title": "Start a fleet upgrade", "engines": engines, "choice": choice,
            "review": chosen if request.method == "POST" else None,
            "running": FleetUpgrade.objects.filter(status=FleetUpgrade.RUNNING).first(),
        }
        return TemplateResponse(request, "admin/stores/fleetupgrade/start.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        extra = {"run": run, "may_operate": may(request, "upgrade")} if run else {}
        return super().change_view(request, object_id, form_url,
                                   {**extra, **(extra_context or {})})

    def progress_view(self, request, run_id):
        run = get_object_or_404(FleetUpgrade, pk=run_id)
        return TemplateResponse(request, "admin/stores/fleetupgrade/_progress.html", {
            "run": run, "may_operate": may(request, "upgrade")})

    def stop_view(self, request, run_id):
        run = get_object_or_404(FleetUpgrade, pk=run_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not may(request, "upgrade"):
            self.message_user(request, "You may view fleet upgrades, not stop them.",
                              messages.ERROR)
        elif fleet.stop(run, _actor(request)):
            self.message_user(request, "Stopped: upgrades in flight finish, no new batch "
                              "starts.", messages.SUCCESS)
        else:
            self.message_user(request, f"The run is {run.status} already.", messages.WARNING)
        return redirect("admin:stores_fleetupgrade_change", run.pk)


# Which operator permission each store page button needs.
BUTTON_OPERATIONS = {"retry": "retry", "upgrade": "upgrade", "rollback": "rollback",
                     "force_fail": "force_fail", "delete": "destroy"}

# How a fleet run's status looks, in the badge colours of store states.
FLEET_BADGES = {
    FleetUpgrade.RUNNING: (c.UPGRADING, "running"),
    FleetUpgrade.DONE: (c.READY, "done"),
    FleetUpgrade.STOPPED: (c.DELETED, "stopped"),
}


def _revision(value: str) -> int:
    """A revision number from a button's form; a crafted one is refused, not a 500."""
    if not (value.isascii() and value.isdigit() and len(value) <= 9):
        raise services.StoreRequestError("Choose a revision to roll back to.", field="revision")
    return int(value)


def _positive(value, default: int) -> int:
    try:
        return max(1, min(100, int(value)))
    except (TypeError, ValueError):
        return default


@admin.register(Orphan)
class OrphanAdmin(ReadOnlyAdmin):
    list_display = ["namespace", "store_id", "why", "first_seen", "last_seen", "removed_at"]
    list_filter = ["removed_at"]
    search_fields = ["namespace", "store_id"]
    readonly_fields = [f.name for f in Orphan._meta.fields]


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
class CommandRecordAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "store", "tool", "short_argv", "exit_code", "duration_ms"]
    list_filter = ["tool", "exit_code"]
    search_fields = ["store__id", "store__name"]
    list_select_related = ["store"]
    readonly_fields = [f.name for f in CommandRecord._meta.fields]

    @admin.display(description="command")
    def short_argv(self, obj):
        return " ".join(obj.argv)[:120]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor_name", "action", "store_id", "ip", "via"]
    list_filter = ["action", "via"]
    search_fields = ["actor_name", "store_id", "ip"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]
    actions = ["export_csv"]

    def has_delete_permission(self, request, obj=None):
        return False  # append-only, for superusers too (the model refuses as well)

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


@admin.register(Backup)
class BackupAdmin(ReadOnlyAdmin):
    """Backups (issue 12): every store's, filterable by status and kind;
    pin one to keep it beyond STORE_BACKUP_KEEP; back up stores from the
    store list."""

    list_display = ["id", "store", "kind", "status", "created_at", "finished_at", "size",
                    "pinned", "error"]
    list_filter = ["status", "kind", "pinned", "store__engine"]
    search_fields = ["id", "store__id", "store__name", "store__owner__username", "error"]
    list_select_related = ["store"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Backup._meta.fields]
    actions = ["pin", "unpin"]

    def has_change_permission(self, request, obj=None):
        return is_operator(request.user, OPERATOR_PERMISSIONS["backup"])

    @admin.action(description="Pin selected backups (kept beyond the retention count)",
                  permissions=["change"])
    def pin(self, request, queryset):
        done = queryset.filter(status=c.BACKUP_SUCCEEDED).update(pinned=True)
        services.audit(_actor(request), "pin_backups", backups=[b.id for b in queryset])
        self.message_user(request, f"Pinned {done} backup(s).", messages.SUCCESS)

    @admin.action(description="Unpin selected backups", permissions=["change"])
    def unpin(self, request, queryset):
        done = queryset.update(pinned=False)
        services.audit(_actor(request), "unpin_backups", backups=[b.id for b in queryset])
        self.message_user(request, f"Unpinned {done} backup(s).", messages.SUCCESS)


# Accounts, invitations, webhooks and notification e-mails (issue 16).
from stores import account_admin  # noqa: E402, F401
