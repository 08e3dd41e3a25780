"""``/api/webhooks/``: an owner's webhook endpoints and their delivery log.
The rules live in stores.webhooks, shared with the account page and admin."""

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from stores import webhooks
from stores.api.schema import error_responses
from stores.api.serializers import (
    WebhookDeliverySerializer,
    WebhookEndpointCreateSerializer,
    WebhookEndpointSerializer,
    WebhookEndpointUpdateSerializer,
    WebhookEndpointWithSecretSerializer,
)
from stores.api.views import EventPagination
from stores.models import WebhookDelivery, WebhookEndpoint

READ = error_responses(400, 401, 404, 503)
ACT = error_responses(400, 401, 404, 409, 503)


class NewestDeliveriesFirst(EventPagination):
    """By delivery id, newest first; a crafted cursor is a 400 (as for events)."""

    ordering = ("-id",)
    page_size = 50
    max_page_size = 200


def _refuse(exc: webhooks.WebhookError):
    """A refused request in the API's one error shape (stores.api.errors)."""
    if exc.status == 400 and exc.field:
        raise ValidationError({"detail": exc.message, "field": exc.field,
                               exc.field: [exc.message]})
    return Response({"detail": exc.message}, status=exc.status)


class WebhookEndpointViewSet(viewsets.ViewSet):
    """Your endpoints only, staff included: a secret is its owner's."""

    queryset = WebhookEndpoint.objects.none()  # for the schema: ids are integers
    lookup_value_regex = r"\d+"

    def _endpoint(self, pk) -> WebhookEndpoint:
        return get_object_or_404(WebhookEndpoint, pk=pk, owner=self.request.user)

    @extend_schema(responses={200: WebhookEndpointSerializer(many=True),
                              **error_responses(401, 503)})
    def list(self, request):
        rows = WebhookEndpoint.objects.filter(owner=request.user).order_by("id")
        return Response(WebhookEndpointSerializer(rows, many=True).data)

    @extend_schema(request=WebhookEndpointCreateSerializer,
                   responses={201: WebhookEndpointWithSecretSerializer,
                              **error_responses(400, 401, 409, 413, 415, 503)})
    def create(self, request):
        data = WebhookEndpointCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            endpoint, secret = webhooks.create_endpoint(
                request.user, data.validated_data["url"], data.validated_data["event_types"],
                data.validated_data.get("description", ""))
        except webhooks.WebhookError as exc:
            return _refuse(exc)
        body = WebhookEndpointSerializer(endpoint).data
        body["secret"] = secret
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: WebhookEndpointSerializer, **READ})
    def retrieve(self, request, pk=None):
        return Response(WebhookEndpointSerializer(self._endpoint(pk)).data)

    @extend_schema(request=WebhookEndpointUpdateSerializer, responses={
        200: WebhookEndpointSerializer, **ACT, **error_responses(413, 415)})
    def partial_update(self, request, pk=None):
        endpoint = self._endpoint(pk)
        data = WebhookEndpointUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            webhooks.update_endpoint(endpoint, **data.validated_data)
        except webhooks.WebhookError as exc:
            return _refuse(exc)
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(request=None, responses={204: None, **READ})
    def destroy(self, request, pk=None):
        self._endpoint(pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: WebhookDeliverySerializer(many=True), **READ})
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        """The delivery log, newest first: every attempt with its status
        code, duration and the start of the answer."""
        endpoint = self._endpoint(pk)
        paginator = NewestDeliveriesFirst()
        rows = endpoint.deliveries.prefetch_related("attempt_log")
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer, **ACT})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Send a ``webhook.test`` event to this endpoint."""
        try:
            with transaction.atomic():
                delivery = webhooks.send_test_event(self._endpoint(pk))
        except webhooks.WebhookError as exc:
            return _refuse(exc)
        return Response(WebhookDeliverySerializer(delivery).data,
                        status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer, **ACT})
    @action(detail=True, methods=["post"], url_path=r"deliveries/(?P<delivery_id>\d+)/redeliver")
    def redeliver(self, request, pk=None, delivery_id=None):
        """Send a message again: same ``webhook-id`` and body, a new signature."""
        endpoint = self._endpoint(pk)
        original = get_object_or_404(WebhookDelivery, pk=delivery_id, endpoint=endpoint)
        try:
            with transaction.atomic():
                delivery = webhooks.redeliver(original)
        except webhooks.WebhookError as exc:
            return _refuse(exc)
        return Response(WebhookDeliverySerializer(delivery).data,
                        status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: WebhookEndpointWithSecretSerializer, **READ})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """A new secret, shown once; the previous one also signs for 24 hours."""
        endpoint = self._endpoint(pk)
        secret = webhooks.rotate_secret(endpoint)
        body = WebhookEndpointSerializer(endpoint).data
        body["secret"] = secret
        return Response(body)
