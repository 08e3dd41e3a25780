"""The error responses the API documents, shared by every operation, so the
schema says what each endpoint can answer (checked by schemathesis in
stores/tests/test_api_fuzz.py)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """Every error: ``detail`` says what went wrong and what to do; a 400
    about one input also names it (``field``, and DRF's ``{field: [...]}``)."""

    detail = serializers.CharField(required=False)
    field = serializers.CharField(required=False)


WHY = {
    400: "The request is invalid; the body says what to fix.",
    401: "No credentials, or an invalid or expired token.",
    403: "Signed in, but without the permission this needs.",
    404: "No such store (a store you may not see does not exist for you).",
    409: "The store is not in a state that allows this, or a quota is full.",
    413: "The body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE.",
    415: "The body is not JSON (Content-Type: application/json).",
    429: "Too many requests or failed sign-ins; the Retry-After header says when to retry.",
    503: "The platform's database is unavailable; nothing was saved. Retry-After is set.",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(ErrorSerializer, description=WHY[code]) for code in codes}


def refuse_unknown_fields(result, generator, request, public):
    """drf-spectacular postprocessing hook: request bodies are
    StrictSerializers, which refuse fields they do not know; say so."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result
