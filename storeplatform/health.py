"""Liveness and readiness for load balancers and kubelets.

/readyz is asked by every kubelet every few seconds and by anyone who
finds it, so it stays cheap: one ``SELECT 1``, one Redis write, and a
``helm version`` that runs at most once per READYZ_HELM_CACHE_SECONDS per
process. Anonymous callers learn which dependency is down, never its
address or error text: that goes to the log, and to operators (a signed-in
staff user, or the METRICS_TOKEN bearer) in the answer.
"""

import hmac
import logging
import shutil
import subprocess
import threading
import time

from django.conf import settings
from django.contrib.auth import get_user
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _check_redis() -> str:
    cache.set("readyz", "1", 5)
    return "ok"


def _run_helm_version() -> str:
    path = shutil.which(settings.HELM_BIN)
    if not path:
        raise RuntimeError(f"helm binary not found: {settings.HELM_BIN}")
    proc = subprocess.run([path, "version", "--short"], capture_output=True, text=True, timeout=10)
    if proc.returncode != 0:
        raise RuntimeError(f"helm version failed: {proc.stderr.strip()[:200]}")
    return proc.stdout.strip()


class _HelmCheck:
    """``helm version`` remembered per process, success or failure, for
    READYZ_HELM_CACHE_SECONDS (a binary does not come and go between
    probes); one caller runs it, concurrent callers wait for that answer."""

    def __init__(self):
        self.lock = threading.Lock()
        self.key = None
        self.checked_at = 0.0
        self.result: str | Exception = ""

    def __call__(self) -> str:
        key = settings.HELM_BIN
        with self.lock:
            fresh = time.monotonic() - self.checked_at < settings.READYZ_HELM_CACHE_SECONDS
            if self.key != key or not fresh:
                try:
                    self.result = _run_helm_version()
                except Exception as exc:
                    self.result = exc
                self.key, self.checked_at = key, time.monotonic()
            result = self.result
        if isinstance(result, Exception):
            raise result
        return result


_check_helm = _HelmCheck()

CHECKS = {"database": _check_database, "redis": _check_redis, "helm": _check_helm}


def _is_operator(request) -> bool:
    """A METRICS_TOKEN bearer, or a signed-in staff user. ProbeMiddleware
    answers before the session middleware, so the session is read here,
    and only when the request carries a session cookie."""
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if token and given and hmac.compare_digest(given.encode(), token.encode()):
        return True
    session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return False
    try:
        request.session = import_string(f"{settings.SESSION_ENGINE}.SessionStore")(session_key)
        user = get_user(request)
    except Exception:  # the database is what may be down: no details then
        return False
    return user.is_active and user.is_staff


def readyz(request):
    """Database, Redis and the helm binary usable? Says which one failed."""
    results, ok = {}, True
    for name, check in CHECKS.items():
        try:
            results[name] = {"ok": True, "detail": check()}
        except Exception as exc:
            ok = False
            results[name] = {"ok": False, "detail": str(exc)[:300]}
            log.warning("readyz: %s is not usable: %s", name, results[name]["detail"])
    if not _is_operator(request):
        results = {name: {"ok": result["ok"]} for name, result in results.items()}
    return JsonResponse({"ok": ok, "checks": results}, status=200 if ok else 503)
