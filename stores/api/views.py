"""The REST API. Business rules live in stores.services; these views only
translate HTTP to service calls and back."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from stores import constants as c
from stores import domains, ratelimits, services
from stores.api.serializers import (
    CredentialsSerializer,
    DomainCreateSerializer,
    DomainSerializer,
    RevisionSerializer,
    RollbackSerializer,
    StoreCreateSerializer,
    StoreEventSerializer,
    StoreSerializer,
)
from stores.clientip import client_ip
from stores.models import Domain, Store, StoreCredentials


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


class StoreViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = StoreSerializer
    pagination_class = NewestFirst

    def get_queryset(self):
        stores = Store.objects.select_related("owner").prefetch_related("domains")
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


@extend_schema(parameters=[OpenApiParameter("store_pk", str, OpenApiParameter.PATH,
                                            description="The store's id.")])
class DomainViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A store's custom domains (issue 11): add one, see the DNS records to
    create, verify them, make one the primary address, remove one."""

    serializer_class = DomainSerializer
    pagination_class = None  # at most STORE_MAX_DOMAINS

    def store(self) -> Store:
        """The store in the URL: someone else's store does not exist for them."""
        stores = Store.objects.all()
        if not self.request.user.is_staff:
            stores = stores.filter(owner=self.request.user)
        return get_object_or_404(stores, pk=self.kwargs["store_pk"])

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular reading the types
            return Domain.objects.none()
        return Domain.objects.filter(store=self.store()).select_related("store")

    @extend_schema(request=DomainCreateSerializer, responses={201: DomainSerializer})
    def create(self, request, store_pk=None):
        store = self.store()
        data = DomainCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        domain = domains.add_domain(actor_for(request), store, data.validated_data["hostname"])
        return Response(DomainSerializer(domain).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={202: DomainSerializer, 204: None})
    def destroy(self, request, store_pk=None, pk=None):
        """A domain never served goes at once (204); a served one is removed
        from the store's release first (202, status ``removing``)."""
        domain = domains.remove_domain(actor_for(request), self.get_object())
        if domain is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(DomainSerializer(domain).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=DomainSerializer)
    @action(detail=True, methods=["post"])
    def verify(self, request, store_pk=None, pk=None):
        """Check the domain's DNS records now. The answer says what is
        missing in ``last_error``; a verified domain is then served."""
        domain = domains.verify_domain(actor_for(request), self.get_object())
        return Response(DomainSerializer(domain).data)

    @extend_schema(request=None, responses={202: DomainSerializer})
    @action(detail=True, methods=["post"], url_path="make-primary")
    def make_primary(self, request, store_pk=None, pk=None):
        """The store's public URL moves to this (verified) domain."""
        domain = domains.make_primary(actor_for(request), self.get_object())
        return Response(DomainSerializer(domain).data, status=status.HTTP_202_ACCEPTED)
