"""API tokens (django-rest-knox, in the model stores.ApiToken) and the
sign-in endpoint programs use to get one.

A token is a password: only its hash and a prefix for display are stored,
it is shown once, it expires, and its owner can revoke it on the tokens
page (``/accounts/tokens/``) or an operator in admin.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.utils.cache import add_never_cache_headers
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import parsers, serializers, status
from rest_framework.decorators import (
    api_view,
    authentication_classes,
    parser_classes,
    permission_classes,
)
from rest_framework.response import Response

from stores.api import parsers as safe_parsers
from stores.api.authentication import ApiTokenAuthentication
from stores.api.schema import error_responses
from stores.api.serializers import StrictSerializer
from stores.models import ApiToken


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = ApiTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": 'An API token, sent as "Token <token>" (POST /api/auth/token/ '
                           "or the tokens page, /accounts/tokens/).",
        }


def create_token(user, name: str, lifetime: timedelta | None) -> tuple[ApiToken, str]:
    """A new token for ``user``: the row (hash and prefix) and the token
    itself, which exists nowhere else and must be shown once."""
    return ApiToken.objects.create(user=user, expiry=lifetime, name=name)


class SignInSerializer(StrictSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False,
                                     style={"input_type": "password"})


TokenResponse = inline_serializer("IssuedToken", {
    "token": serializers.CharField(help_text="Send as `Authorization: Token <token>`. "
                                             "Shown this once; only a hash is stored."),
    "prefix": serializers.CharField(help_text="The token's first characters, as listed "
                                              "on the tokens page."),
    "expiry": serializers.DateTimeField(help_text="When the token stops working."),
})


@extend_schema(
    request={"application/json": SignInSerializer,
             "application/x-www-form-urlencoded": SignInSerializer},
    responses={200: TokenResponse, **error_responses(400, 413, 415, 429)},
    auth=[],
    description="Exchange a user name and password for an API token that expires after "
                "API_TOKEN_TTL_HOURS. Repeated failures for one account or from one address "
                "are refused with 429 and Retry-After for a cool-off period.",
)
@api_view(["POST"])
@authentication_classes([])
@permission_classes([])
@parser_classes([safe_parsers.JSONParser, parsers.FormParser, parsers.MultiPartParser])
def obtain_token(request):
    data = SignInSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    # The Django request, so that django-axes counts this attempt and its
    # middleware turns a lockout into 429 (stores.lockout).
    user = authenticate(request._request, username=data.validated_data["username"],
                        password=data.validated_data["password"])
    if user is None or not user.is_active:
        return Response({"detail": "Unable to sign in with the user name and password given."},
                        status=status.HTTP_400_BAD_REQUEST)
    row, token = create_token(user, "API sign-in", timedelta(hours=settings.API_TOKEN_TTL_HOURS))
    response = Response({"token": token, "prefix": row.prefix,
                         "expiry": row.expiry.isoformat() if row.expiry else None})
    add_never_cache_headers(response)
    return response
