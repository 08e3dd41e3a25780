"""Does the storefront answer?

With STORE_INGRESS_PROBE_URL set, the probe connects to the ingress
controller there and sends the store's Host header (the control plane often
cannot resolve the public name from inside the cluster); otherwise it
fetches the public storefront URL.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings


def storefront_answers(url: str, timeout: float = 5.0) -> tuple[bool, str]:
    parts = urlsplit(url)
    target, headers = url, {"User-Agent": "storeplatform-probe"}
    if settings.STORE_INGRESS_PROBE_URL:
        base = settings.STORE_INGRESS_PROBE_URL.rstrip("/")
        target = f"{base}{parts.path or '/'}"
        headers["Host"] = parts.netloc
    request = urllib.request.Request(target, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return 200 <= response.status < 400, f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return False, str(getattr(exc, "reason", exc))


def wait_for_storefront(url: str, deadline_seconds: float, tick=None) -> tuple[bool, str]:
    """Poll until the storefront answers or the deadline passes."""
    deadline = time.monotonic() + deadline_seconds
    delay = 0.1
    while True:
        ok, detail = storefront_answers(url)
        if ok or time.monotonic() + delay > deadline:
            return ok, detail
        if tick:
            tick()
        time.sleep(delay)
        delay = min(delay * 2, 3.0)
