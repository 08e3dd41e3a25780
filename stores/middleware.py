from urllib.parse import unquote

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.http.request import host_validation_re, split_domain_port, validate_host
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.defaults import bad_request as django_bad_request
from django.views.defaults import page_not_found as django_page_not_found


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def _too_large(request, length: int | None, too_many_fields: bool = False):
    """413 that says what the limit is: JSON for the API, a page for forms."""
    if too_many_fields:
        size = "too many fields"
        limit = f"{settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields"
    else:
        size = f"{length} bytes" if length else "over the limit"
        limit = f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes"
    if _is_api(request):
        return JsonResponse(
            {"detail": f"Request body too large: {size}; the limit is {limit}."}, status=413)
    return render(request, "request_too_large.html", {"size": size, "limit": limit}, status=413)


class RequestBodyLimitMiddleware:
    """Refuse oversized bodies up front with 413 and a clear message.

    DRF reads the request stream itself, bypassing Django's own
    DATA_UPLOAD_MAX_MEMORY_SIZE check, so the API needs this one; a web
    form gets a page that explains the limit instead of a bare 400.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit and length > limit:
            return _too_large(request, length)
        return self.get_response(request)


def bad_request(request, exception=None):
    """handler400: a body Django refused while reading it (no or a false
    Content-Length) is explained like RequestBodyLimitMiddleware does."""
    if isinstance(exception, RequestDataTooBig | TooManyFieldsSent):
        return _too_large(request, None, isinstance(exception, TooManyFieldsSent))
    return django_bad_request(request, exception)


def not_found(request, exception=None):
    """handler404: the API answers in its own JSON shape, pages as before."""
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return django_page_not_found(request, exception)


class NulByteMiddleware:
    """400 for a NUL character in the path or the query string.

    PostgreSQL cannot store or compare text containing NUL: a store id or a
    filter value with %00 made the database raise, which surfaced as a 500
    in pages and admin and a false "database unavailable" in the API.
    Nothing legitimate carries one, so it is refused before any view.
    """

    MESSAGE = "The address contains a NUL character (%00), which no page or filter accepts."

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or "\x00" in unquote(request.META.get("QUERY_STRING", "")):
            if _is_api(request):
                return JsonResponse({"detail": self.MESSAGE}, status=400)
            return HttpResponseBadRequest(self.MESSAGE, content_type="text/plain")
        return self.get_response(request)




class PausedStoreMiddleware:
    """The "This store is paused" page, for the hosts of suspended stores.

    A suspended store runs no pods: its Ingress sends visitors to the
    platform's web Service (an ExternalName Service in the store's chart,
    value ``paused.backend``; docs/system-design.md, "Suspend and resume").
    Those requests carry the store's Host, which is not a platform host:
    they are answered here, before host validation, and only when the host
    belongs to a paused store. Any other foreign host goes on to Django's
    400 as before, so platform pages are never served under a store's name.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        host = _request_host(request)
        if host and not validate_host(host, settings.ALLOWED_HOSTS):
            store = _paused_store(host)
            if store is not None:
                return _paused_page(store)
        return self.get_response(request)


def _request_host(request) -> str:
    """The Host header without its port, or "" when it is not a host name."""
    raw = request.META.get("HTTP_HOST", "")
    if not host_validation_re.match(raw):
        return ""
    domain, _port = split_domain_port(raw)
    return domain


def _paused_store(host: str):
    # Imported here: middleware is loaded before the apps are ready.
    from stores import constants as c
    from stores.models import Domain, Store

    paused = [c.SUSPENDING, c.SUSPENDED, c.RESUMING]
    store = Store.objects.filter(host=host, status__in=paused).only("name").first()
    if store is None:
        domain = (Domain.objects.filter(hostname=host, store__status__in=paused)
                  .select_related("store").only("store__name").first())
        store = domain.store if domain else None
    return store


def _paused_page(store):
    """503 with Retry-After: the shop is away for now, not gone (crawlers
    keep its pages); never cached, since a resume brings it back."""
    # No request context: none of the platform's middleware ran for a store host.
    response = HttpResponse(render_to_string("stores/paused.html", {"store": store}),
                            status=503)
    response["Retry-After"] = "3600"
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
