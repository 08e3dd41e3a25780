"""The REST API. Business rules live in stores.services; these views only
translate HTTP to service calls and back. Who may act on which store is
stores.permissions."""

from datetime import UTC, datetime

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.cache import add_never_cache_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ParseError, PermissionDenied, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import SAFE_METHODS, IsAuthenticated
from rest_framework.response import Response

from stores import constants as c
from stores import domains, ratelimits, services
from stores.api.schema import error_responses
from stores.api.serializers import (
    BackupSerializer,
    CloneSerializer,
    CredentialsSerializer,
    DomainCreateSerializer,
    DomainSerializer,
    RestoreSerializer,
    RevisionSerializer,
    RollbackSerializer,
    StoreCreateSerializer,
    StoreEventSerializer,
    StoreSerializer,
    UpgradeSerializer,
)
from stores.clientip import client_ip
from stores.models import Backup, CredentialsUnreadable, Domain, Store, StoreCredentials
from stores.permissions import (
    STORE_ID_PATTERN,
    StorePermission,
    is_operator,
    is_store_id,
    stores_for,
)

BIGINT_MAX = 2**63 - 1


class StrictCursorPagination(CursorPagination):
    """DRF's cursor pagination, with a cursor or page size it cannot use
    answered 400 instead of a 404 or, for a well-encoded but impossible
    position, a 500."""

    invalid_cursor_message = "Invalid cursor: use the next or previous link of a page."

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound as exc:
            raise ParseError(self.invalid_cursor_message) from exc
        if cursor is not None and cursor.position is not None:
            try:
                self.check_position(cursor.position)
            except (ValueError, OverflowError) as exc:
                raise ParseError(self.invalid_cursor_message) from exc
        return cursor

    def check_position(self, position: str) -> None:
        raise NotImplementedError

    def get_page_size(self, request):
        given = request.query_params.get(self.page_size_query_param)
        if given is not None and not (given.isascii() and given.isdigit()
                                      and 1 <= int(given[:6]) <= self.max_page_size):
            raise ValidationError({self.page_size_query_param: [
                f"A whole number from 1 to {self.max_page_size}."]})
        return super().get_page_size(request)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters


class NewestFirst(StrictCursorPagination):
    # A cursor, not page numbers: the cost of a page does not grow with the
    # number of stores (no COUNT, no OFFSET).
    ordering = ("-created_at", "id")
    page_size = 25
    max_page_size = 100
    page_size_query_param = "page_size"

    def check_position(self, position: str) -> None:
        created = datetime.fromisoformat(position)
        if created.tzinfo is None:
            raise ValueError("a cursor's time has an offset")
        created.astimezone(UTC)  # OverflowError past year 1 or 9999


class EventPagination(StrictCursorPagination):
    ordering = ("id",)
    page_size = 100
    max_page_size = 500
    page_size_query_param = "page_size"

    def check_position(self, position: str) -> None:
        if not (position.isascii() and position.isdigit() and len(position) <= 19
                and int(position) <= BIGINT_MAX):
            raise ValueError("an event cursor is an event id")


def actor_for(request) -> services.Actor:
    return services.Actor(request.user, ip=client_ip(request), via="api")


ID_PARAMETER = OpenApiParameter(
    "id", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=STORE_ID_PATTERN,
    description="The store's id: a letter then nine lower-case letters or digits.",
)
STATUS_VALUES = [s for s, _ in c.STATUS_CHOICES]
READ = error_responses(400, 401, 404, 503)
ACT = error_responses(400, 401, 403, 404, 409, 503)


# --- What each operation is for, as the API docs (/api/docs/) show it. ---
# Kept apart from the per-method @extend_schema (request/response shapes and
# error responses) so each can change without touching the other.
@extend_schema_view(
    list=extend_schema(
        summary="List your stores",
        description="Your stores, newest first (an operator with stores.view_store: every "
        "store), by cursor: follow "
        "`next` for older ones. Deleted stores are left out unless `?status=deleted`."),
    create=extend_schema(
        summary="Create a store",
        description="Accepts the request and answers 202 at once: the store is `requested`, "
        "a worker provisions it (watch `status`, or `/events/`). Refused with 400 for a bad "
        "name or engine, 409 over your quota, 429 when creating too fast."),
    retrieve=extend_schema(
        summary="Get a store",
        description="One of your stores: its status, the reason and message when it "
        "failed (`status_title` is the reason in words), its addresses and chart."),
    destroy=extend_schema(
        summary="Delete a store",
        description="Starts the deletion (202): the release, its volumes and its namespace "
        "are removed, then the store is `deleted`. Deleting a store that is still being "
        "provisioned stops the provisioning. Deleting twice is the same request."),
    retry=extend_schema(
        summary="Retry a failed store",
        description="Runs again the operation that failed (provision, upgrade, rollback or "
        "deletion), with the same credentials. 409 unless the store is `failed`."),
    revisions=extend_schema(
        summary="List the store's release revisions",
        description="The helm release history, newest first, as recorded after the last "
        "operation that changed it (no call to the cluster)."),
    upgrade=extend_schema(
        summary="Upgrade a store",
        description="Moves the store to the platform's current chart version with the same "
        "values and credentials (202, status `upgrading`). Its first step is a backup when "
        "object storage is configured; if that fails, the upgrade stops with reason "
        "`backup_failed` before anything changed (operators may send `skip_backup: true`, "
        "audited). 409 unless it is ready, degraded, suspended or failed."),
    rollback=extend_schema(
        summary="Roll a store back",
        description="Goes back to an earlier revision from `/revisions/` (202, status "
        "`rolling_back`); helm records it as a new revision. The shop's data is not rolled "
        "back. 400 for a revision that does not exist, 409 for the running one."),
    events=extend_schema(
        summary="List the store's timeline",
        description="Every status change, step (with its duration), retry and warning, "
        "oldest first, by cursor."),
    suspend=extend_schema(
        summary="Suspend a store",
        description="Pauses a ready or degraded store (202, status `suspending`, then "
        "`suspended`): its pods stop, its volumes and data stay, and its address shows "
        "\"This store is paused\". 409 from any other state."),
    resume=extend_schema(
        summary="Resume a suspended store",
        description="Starts the shop again (202, status `resuming`); it is `ready` once its "
        "pods are ready and its storefront answers. 409 unless the store is `suspended`."),
    credentials=extend_schema(
        summary="Get the store's admin login",
        description="The admin URL, user name, email and password of the shop. Owner only "
        "(no operator reads them); each read is written to the audit log. 409 before provisioning "
        "created them."),
)
@extend_schema_view(
    retrieve=extend_schema(parameters=[ID_PARAMETER], responses={200: StoreSerializer, **READ}),
)
class StoreViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = StoreSerializer
    pagination_class = NewestFirst
    permission_classes = [IsAuthenticated, StorePermission]
    # Any id reaches get_object, which answers 404 in JSON (the router's
    # default refuses dots, and Django's HTML 404 is not the API's shape).
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            # drf-spectacular builds the schema without a user; it needs only
            # the model (else `check --deploy` warns the id type is unknown).
            return Store.objects.none()
        stores = stores_for(self.request.user, self.action).prefetch_related("domains")
        if self.action == "list":
            wanted = self.request.query_params.get("status")
            if wanted is not None and wanted not in STATUS_VALUES:
                raise ValidationError({"status": [
                    f"Unknown status; choose one of: {', '.join(STATUS_VALUES)}."]})
            stores = stores.filter(status=wanted) if wanted else stores.exclude(status=c.DELETED)
        return stores

    def get_object(self):
        if not is_store_id(self.kwargs.get("pk", "")):
            raise Http404("No such store.")
        return super().get_object()

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=STATUS_VALUES,
                                     description="Only stores in this status (default: all "
                                                 "but deleted).")],
        responses={200: StoreSerializer(many=True), **error_responses(400, 401, 503)},
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=StoreCreateSerializer, responses={
        202: StoreSerializer, **error_responses(400, 401, 409, 413, 415, 429, 503)})
    def create(self, request):
        ratelimits.check(request, "create")
        data = StoreCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        store = services.create_store(
            actor_for(request), data.validated_data["name"], data.validated_data["engine"]
        )
        return Response(StoreSerializer(store).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[ID_PARAMETER], request=None, responses={
        202: StoreSerializer, **ACT, **error_responses(429)})
    def destroy(self, request, pk=None):
        store = self.get_object()
        ratelimits.check(request, "delete")
        store = services.delete_store(actor_for(request), store)
        return Response(StoreSerializer(store).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[ID_PARAMETER], request=None,
                   responses={202: StoreSerializer, **ACT})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        store = services.retry_store(actor_for(request), self.get_object())
        return Response(StoreSerializer(store).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[ID_PARAMETER],
                   responses={200: RevisionSerializer(many=True), **READ})
    @action(detail=True, methods=["get"], pagination_class=None)
    def revisions(self, request, pk=None):
        """The release's revision history, newest first, as helm reported it
        after the last operation that changed the release (at most
        STORE_HELM_HISTORY_MAX entries, so not paginated)."""
        store = self.get_object()
        rows = store.revisions.all() if store.status != c.DELETED else []
        return Response(RevisionSerializer(rows, many=True).data)

    @extend_schema(parameters=[ID_PARAMETER], request=UpgradeSerializer,
                   responses={202: StoreSerializer, **ACT})
    @action(detail=True, methods=["post"])
    def upgrade(self, request, pk=None):
        """Upgrade to the platform's current chart version (same values, credentials)."""
        store = self.get_object()
        data = UpgradeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        store = services.upgrade_store(actor_for(request), store,
                                       skip_backup=data.validated_data["skip_backup"])
        return Response(StoreSerializer(store).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[ID_PARAMETER], request=None,
                   responses={202: StoreSerializer, **ACT})
    @action(detail=True, methods=["post"])
    def suspend(self, request, pk=None):
        """Pause a ready or degraded store: no pods (0 CPU, 0 memory requested),
        volumes and credentials kept, its address shows a paused page."""
        store = services.suspend_store(actor_for(request), self.get_object())
        return Response(StoreSerializer(store).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[ID_PARAMETER], request=None,
                   responses={202: StoreSerializer, **ACT})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Bring a suspended store back: Ready once its storefront answers."""
        store = services.resume_store(actor_for(request), self.get_object())
        return Response(StoreSerializer(store).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Copy a store from one of its backups",
        description="Creates a new store for the same owner (202, `requested`; it counts "
        "toward the owner's quota) and restores into it the store's latest good backup, or "
        "`backup_id`; the copy answers at its own address. Works for a deleted store while "
        "its backups are kept. 400 when object storage is not configured, 404 for a backup "
        "the store does not have, 409 over the quota or with no good backup.",
        parameters=[ID_PARAMETER], request=CloneSerializer,
        responses={202: StoreSerializer, **ACT, **error_responses(413, 415, 429)})
    @action(detail=True, methods=["post"])
    def clone(self, request, pk=None):
        source = self.get_object()
        ratelimits.check(request, "create")
        data = CloneSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        store = services.clone_store(actor_for(request), source, data.validated_data["name"],
                                     data.validated_data.get("backup_id"))
        return Response(StoreSerializer(store).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[ID_PARAMETER], request=RollbackSerializer, responses={
        202: StoreSerializer, **ACT, **error_responses(413, 415)})
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        store = self.get_object()
        data = RollbackSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        store = services.rollback_store(actor_for(request), store,
                                        data.validated_data["revision"])
        return Response(StoreSerializer(store).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[ID_PARAMETER],
                   responses={200: StoreEventSerializer(many=True), **READ})
    @action(detail=True, methods=["get"], pagination_class=EventPagination)
    def events(self, request, pk=None):
        store = self.get_object()
        page = self.paginate_queryset(store.events.all())
        return self.get_paginated_response(StoreEventSerializer(page, many=True).data)

    @extend_schema(parameters=[ID_PARAMETER], responses={
        200: CredentialsSerializer, **error_responses(400, 401, 404, 409, 503)})
    @action(detail=True, methods=["get"])
    def credentials(self, request, pk=None):
        # Owner only (stores_for): an operator sees the store, never its login.
        store = self.get_object()
        creds = StoreCredentials.objects.filter(store=store).first()
        if creds is None or store.status == c.DELETED:
            return Response(
                {"detail": "This store has no credentials yet (or any more): they are "
                           "created when provisioning starts."},
                status=status.HTTP_409_CONFLICT,
            )
        try:
            values = creds.values
        except CredentialsUnreadable as exc:
            return Response({"detail": exc.message}, status=status.HTTP_409_CONFLICT)
        services.audit(actor_for(request), "view_credentials", store.id)
        response = Response(CredentialsSerializer({
            "admin_url": store.admin_url, "username": values["admin-username"],
            "email": values["admin-email"], "password": values["admin-password"],
        }).data)
        add_never_cache_headers(response)  # a password: no cache may keep it
        return response


@extend_schema_view(
    list=extend_schema(
        summary="List the store's backups",
        description="Newest first: each backup's kind, status, size, checksum, where it is "
        "and, when it failed, why.", responses={200: BackupSerializer(many=True), **READ}),
    retrieve=extend_schema(
        summary="Get a backup", responses={200: BackupSerializer, **READ}),
)
@extend_schema(parameters=[OpenApiParameter("store_pk", str, OpenApiParameter.PATH,
                                            description="The store's id.")])
class BackupViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A store's backups (issue 12): list them, back up now, restore one."""

    serializer_class = BackupSerializer
    pagination_class = NewestFirst
    lookup_value_regex = "[^/]+"

    def store(self) -> Store:
        """The store in the URL; someone else's needs view_store to read,
        and backup_store / restore_store to act (stores.permissions)."""
        store_id, user = self.kwargs["store_pk"], self.request.user
        if not is_store_id(store_id):
            raise Http404
        store = get_object_or_404(stores_for(user, "retrieve"), pk=store_id)
        permission = {"create": "stores.backup_store", "restore": "stores.restore_store"}.get(
            self.action)
        if permission and store.owner_id != user.pk and not is_operator(user, permission):
            raise PermissionDenied(f"This store is not yours: that needs the permission "
                                   f"{permission}.")
        return store

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Backup.objects.none()
        return Backup.objects.filter(store=self.store())

    def get_object(self):
        if not is_store_id(self.kwargs.get("pk", "")):  # backup ids have the same shape
            raise Http404("No such backup.")
        return super().get_object()

    @extend_schema(summary="Back the store up now",
                   description="Starts a backup (202, the backup `pending`; the store "
                   "`backing_up` while it runs, its shop serving as usual). 400 when object "
                   "storage is not configured (the answer names the setting), 409 unless the "
                   "store is ready or degraded.",
                   request=None, responses={202: BackupSerializer, **ACT})
    def create(self, request, store_pk=None):
        store = self.store()
        backup = services.back_up_store(actor_for(request), store)
        return Response(BackupSerializer(backup).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Restore the store from this backup",
                   description="Replaces the store's database and files with this backup's "
                   "(202, status `restoring`). A safety backup is taken first, unless the "
                   "store has failed. 409 while the store is busy or the backup is not a "
                   "good one.",
                   request=RestoreSerializer, responses={202: StoreSerializer, **ACT})
    @action(detail=True, methods=["post"])
    def restore(self, request, store_pk=None, pk=None):
        backup = self.get_object()
        RestoreSerializer(data=request.data).is_valid(raise_exception=True)
        store = services.restore_store(actor_for(request), backup.store, backup)
        return Response(StoreSerializer(store).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(
        summary="List the store's custom domains",
        description="Each domain with its status, the DNS records to create for it, and "
        "whether it is the primary address.",
        responses={200: DomainSerializer(many=True), **READ}),
    retrieve=extend_schema(
        summary="Get a custom domain",
        description="Its status, DNS records, certificate state and the last check's "
        "error, if any.",
        responses={200: DomainSerializer, **READ}),
)
@extend_schema(parameters=[OpenApiParameter("store_pk", str, OpenApiParameter.PATH,
                                            description="The store's id.")])
class DomainViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A store's custom domains (issue 11): add one, see the DNS records to
    create, verify them, make one the primary address, remove one."""

    serializer_class = DomainSerializer
    pagination_class = None  # at most STORE_MAX_DOMAINS

    def store(self) -> Store:
        """The store in the URL. Someone else's store does not exist for
        them, unless they are an operator (stores.permissions): viewing its
        domains needs view_store, changing them change_store."""
        store_id, user = self.kwargs["store_pk"], self.request.user
        if not is_store_id(store_id):
            raise Http404
        store = get_object_or_404(stores_for(user, "retrieve"), pk=store_id)
        changing = self.request.method not in SAFE_METHODS
        if changing and store.owner_id != user.pk and not is_operator(user, "stores.change_store"):
            raise PermissionDenied("This store is not yours: changing its domains needs "
                                   "the permission stores.change_store.")
        return store

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular reading the types
            return Domain.objects.none()
        return Domain.objects.filter(store=self.store()).select_related("store")

    @extend_schema(
        summary="Add a custom domain",
        description="Adds a host name of yours (201, status `pending_verification`); the "
        "answer lists the DNS records to create, then verify it.",
        request=DomainCreateSerializer, responses={
            201: DomainSerializer, **ACT, **error_responses(413, 415)})
    def create(self, request, store_pk=None):
        store = self.store()
        data = DomainCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        domain = domains.add_domain(actor_for(request), store, data.validated_data["hostname"])
        return Response(DomainSerializer(domain).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Remove a custom domain",
                   description="A domain never served goes at once (204); a served one is "
                   "removed from the store's release first (202, status `removing`).",
                   request=None, responses={202: DomainSerializer, 204: None, **ACT})
    def destroy(self, request, store_pk=None, pk=None):
        """A domain never served goes at once (204); a served one is removed
        from the store's release first (202, status ``removing``)."""
        domain = domains.remove_domain(actor_for(request), self.get_object())
        if domain is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(DomainSerializer(domain).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Verify a custom domain's DNS now",
                   description="Checks its DNS records at once; `last_error` says what is "
                   "missing. A verified domain is then served by the store.",
                   request=None, responses={200: DomainSerializer, **ACT})
    @action(detail=True, methods=["post"])
    def verify(self, request, store_pk=None, pk=None):
        """Check the domain's DNS records now. The answer says what is
        missing in ``last_error``; a verified domain is then served."""
        domain = domains.verify_domain(actor_for(request), self.get_object())
        return Response(DomainSerializer(domain).data)

    @extend_schema(summary="Make a custom domain the store's address",
                   description="The store's public URL moves to this verified domain (202); "
                   "the store's own host then redirects there.",
                   request=None, responses={202: DomainSerializer, **ACT})
    @action(detail=True, methods=["post"], url_path="make-primary")
    def make_primary(self, request, store_pk=None, pk=None):
        """The store's public URL moves to this (verified) domain."""
        domain = domains.make_primary(actor_for(request), self.get_object())
        return Response(DomainSerializer(domain).data, status=status.HTTP_202_ACCEPTED)
