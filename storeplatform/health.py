"""Liveness and readiness for load balancers and kubelets."""

import shutil
import subprocess

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse, JsonResponse


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _check_redis() -> str:
    cache.set("readyz", "1", 5)
    return "ok"


def _check_helm() -> str:
    path = shutil.which(settings.HELM_BIN)
    if not path:
        raise RuntimeError(f"helm binary not found: {settings.HELM_BIN}")
    proc = subprocess.run([path, "version", "--short"], capture_output=True, text=True, timeout=10)
    if proc.returncode != 0:
        raise RuntimeError(f"helm version failed: {proc.stderr.strip()[:200]}")
    return proc.stdout.strip()


CHECKS = {"database": _check_database, "redis": _check_redis, "helm": _check_helm}


def readyz(request):
    """Database, Redis and the helm binary usable? Says which one failed."""
    results, ok = {}, True
    for name, check in CHECKS.items():
        try:
            results[name] = {"ok": True, "detail": check()}
        except Exception as exc:
            ok = False
            results[name] = {"ok": False, "detail": str(exc)[:300]}
    return JsonResponse({"ok": ok, "checks": results}, status=200 if ok else 503)
