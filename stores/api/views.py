"""The REST API. Business rules live in stores.services; these views only
translate HTTP to service calls and back."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from stores import constants as c
from stores import ratelimits, services
from stores.api.serializers import (
    CredentialsSerializer,
    RevisionSerializer,
    RollbackSerializer,
    StoreCreateSerializer,
    StoreEventSerializer,
    StoreSerializer,
)
from stores.clientip import client_ip
from stores.models import Store, StoreCredentials


class NewestFirst(CursorPagination):
    # A cursor, not page numbers: the cost of a page does not grow with the
    # number of stores (no COUNT, no OFFSET).
    ordering = ("-created_at", "id")
    page_size = 25
    max_page_size = 100
    page_size_query_param = "page_size"


class EventPagination(CursorPagination):
    ordering = ("id",)
    page_size = 100
    max_page_size = 500
    page_size_query_param = "page_size"


def actor_for(request) -> services.Actor:
    return services.Actor(request.user, ip=client_ip(request), via="api")


# --- What each operation is for, as the API docs (/api/docs/) show it. ---
# Kept apart from the per-method @extend_schema (request/response shapes and
# error responses) so each can change without touching the other.
@extend_schema_view(
    list=extend_schema(
        summary="List your stores",
        description="Your stores, newest first (staff: every store), by cursor: follow "
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
        "values and credentials (202, status `upgrading`). 409 unless it is ready, degraded "
        "or failed."),
    rollback=extend_schema(
        summary="Roll a store back",
        description="Goes back to an earlier revision from `/revisions/` (202, status "
        "`rolling_back`); helm records it as a new revision. The shop's data is not rolled "
        "back. 400 for a revision that does not exist, 409 for the running one."),
    events=extend_schema(
        summary="List the store's timeline",
        description="Every status change, step (with its duration), retry and warning, "
        "oldest first, by cursor."),
    credentials=extend_schema(
        summary="Get the store's admin login",
        description="The admin URL, user name, email and password of the shop. Owner only "
        "(not staff); each read is written to the audit log. 409 before provisioning "
        "created them."),
)
class StoreViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = StoreSerializer
    pagination_class = NewestFirst

    def get_queryset(self):
        stores = Store.objects.select_related("owner")
        if not self.request.user.is_staff:
            stores = stores.filter(owner=self.request.user)
        if self.action == "list":
            wanted = self.request.query_params.get("status")
            stores = stores.filter(status=wanted) if wanted else stores.exclude(status=c.DELETED)
        return stores

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=[s for s, _ in c.STATUS_CHOICES],
                                     description="Only stores in this status (default: all "
                                                 "but deleted).")]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=StoreCreateSerializer, responses={202: StoreSerializer})
    def create(self, request):
        ratelimits.check(request, "create")
        data = StoreCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        store = services.create_store(
            actor_for(request), data.validated_data["name"], data.validated_data["engine"]
        )
        return Response(StoreSerializer(store).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: StoreSerializer})
    def destroy(self, request, pk=None):
        store = self.get_object()
        ratelimits.check(request, "delete")
        store = services.delete_store(actor_for(request), store)
        return Response(StoreSerializer(store).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: StoreSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        store = services.retry_store(actor_for(request), self.get_object())
        return Response(StoreSerializer(store).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=RevisionSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def revisions(self, request, pk=None):
        """The release's revision history, newest first, as helm reported it
        after the last operation that changed the release (at most
        STORE_HELM_HISTORY_MAX entries, so not paginated)."""
        store = self.get_object()
        rows = store.revisions.all() if store.status != c.DELETED else []
        return Response(RevisionSerializer(rows, many=True).data)

    @extend_schema(request=None, responses={202: StoreSerializer})
    @action(detail=True, methods=["post"])
    def upgrade(self, request, pk=None):
        """Upgrade to the platform's current chart version (same values, credentials)."""
        store = services.upgrade_store(actor_for(request), self.get_object())
        return Response(StoreSerializer(store).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=RollbackSerializer, responses={202: StoreSerializer})
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        store = self.get_object()
        data = RollbackSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        store = services.rollback_store(actor_for(request), store,
                                        data.validated_data["revision"])
        return Response(StoreSerializer(store).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=StoreEventSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=EventPagination)
    def events(self, request, pk=None):
        store = self.get_object()
        page = self.paginate_queryset(store.events.all())
        return self.get_paginated_response(StoreEventSerializer(page, many=True).data)

    @extend_schema(responses=CredentialsSerializer)
    @action(detail=True, methods=["get"])
    def credentials(self, request, pk=None):
        # Owner only: staff can see every store, but not log into its shop.
        store = get_object_or_404(Store, pk=pk, owner=request.user)
        creds = StoreCredentials.objects.filter(store=store).first()
        if creds is None or store.status == c.DELETED:
            return Response(
                {"detail": "This store has no credentials yet (or any more): they are "
                           "created when provisioning starts."},
                status=status.HTTP_409_CONFLICT,
            )
        values = creds.values
        services.audit(actor_for(request), "view_credentials", store.id)
        return Response(CredentialsSerializer({
            "admin_url": store.admin_url, "username": values["admin-username"],
            "email": values["admin-email"], "password": values["admin-password"],
        }).data)
