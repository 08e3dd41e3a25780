"""One error shape for the whole API: ``{"detail": ..., "field": ...}``."""

import logging

from django.db import InterfaceError, OperationalError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from provisioning.errors import ProvisioningError
from stores.ratelimits import RateLimited
from stores.services import StoreRequestError

log = logging.getLogger(__name__)


def exception_handler(exc, context):
    if isinstance(exc, StoreRequestError):
        body = {"detail": exc.message}
        if exc.field:
            # Also in DRF's own shape, so clients read every 400 the same way.
            body["field"] = exc.field
            body[exc.field] = [exc.message]
        return Response(body, status=exc.status)
    if isinstance(exc, RateLimited):
        return Response(
            {"detail": exc.message}, status=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, ProvisioningError):
        # A read that needs the cluster (revision history) while it is away.
        return Response({"detail": exc.message, "reason": exc.reason},
                        status=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": "30"})
    if isinstance(exc, OperationalError | InterfaceError):
        # The database could not be reached (connection refused or lost,
        # server shutting down): nothing was done. Other database errors
        # (bad data, a bug) are not an outage and must not claim to be one.
        log.error("database unavailable while serving the API: %s", exc)
        return Response(
            {"detail": "The platform's database is unavailable, so nothing was saved. "
                       "Please try again in a minute."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "30"},
        )
    return drf_exception_handler(exc, context)
