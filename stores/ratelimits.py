"""Per-user and per-IP limits on creating and deleting stores.

Counters live in the Redis cache (django-ratelimit). A limited request gets
429 with ``Retry-After``. If Redis itself is down we let the request through
(and log it): the quota still caps what a user can hold, and refusing every
request because a counter is unavailable would be worse.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django_ratelimit.core import get_usage

log = logging.getLogger(__name__)

RATES = {
    "create": lambda: settings.STORE_CREATE_RATE,
    "delete": lambda: settings.STORE_DELETE_RATE,
    # Anonymous pages (stores.account_pages): counted per IP, and the reset
    # also per address asked for, so nobody can flood one inbox.
    "sign-up": lambda: settings.SIGNUP_RATE,
    "password reset": lambda: settings.PASSWORD_RESET_RATE,
}


class RateLimited(Exception):
    def __init__(self, action: str, retry_after: int):
        self.retry_after = max(1, int(retry_after))
        self.message = (
            f"Too many {action} requests. Try again in {self.retry_after} seconds."
        )
        super().__init__(self.message)


def check(request, action: str, keys: tuple[str, ...] = ("user", "ip")) -> None:
    """Count this request; raise RateLimited when over the limit. ``keys``
    are django-ratelimit keys ("user", "ip", "post:email"...)."""
    if not settings.RATELIMIT_ENABLE:
        return
    rate = RATES[action]()
    for key in keys:
        try:
            usage = get_usage(
                request, group=f"stores:{action}:{key}", key=key, rate=rate, increment=True
            )
        except Exception as exc:  # the cache backend raises its own errors
            log.warning("rate limit check skipped, cache unavailable: %s", exc)
            return
        if usage and usage["should_limit"]:
            raise RateLimited(action, usage["time_left"])
