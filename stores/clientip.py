"""The address a request came from, for rate limits and the audit log.

Behind an ingress controller REMOTE_ADDR is the proxy's. Set
CLIENT_IP_HEADER to the header your proxy sets and overwrites (traefik and
ingress-nginx: ``HTTP_X_REAL_IP``; a header clients can forge would let them
dodge per-IP limits). Unset, REMOTE_ADDR is used.
"""

from django.conf import settings


def client_ip(request) -> str | None:
    key = settings.CLIENT_IP_HEADER
    value = request.META.get(key) if key else None
    if value:
        return value.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR") or None
