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
