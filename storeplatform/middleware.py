"""Answer probes and scrapes before host validation.

Kubelets and Prometheus call pods by IP, with a Host header that is not in
ALLOWED_HOSTS; Django would answer 400. These endpoints reveal nothing
host-specific, so they are served first, as they are.
"""

from storeplatform import health


class ProbeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        from stores import metrics_view

        self.routes = {
            "/healthz": health.healthz,
            "/readyz": health.readyz,
            "/metrics": metrics_view.metrics,
        }

    def __call__(self, request):
        view = self.routes.get(request.path_info)
        if view is not None and request.method in ("GET", "HEAD"):
            return view(request)
        return self.get_response(request)


class PermissionsPolicyMiddleware:
    """Send settings.PERMISSIONS_POLICY as the Permissions-Policy header.

    Django has settings for the other security headers but not this one, and
    a package for one constant header is not worth its weight.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        from django.conf import settings

        self.policy = settings.PERMISSIONS_POLICY

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy:
            response.headers.setdefault("Permissions-Policy", self.policy)
        return response
