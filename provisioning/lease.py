"""Mutual exclusion that survives worker crashes.

*Store lease*: a worker owns a store's operation while its lease (two
columns of the store row: owner + expiry) is fresh. It renews the lease while
helm runs; a worker that dies stops renewing and the lease expires, so the
reconciler or another worker can take over. The write that ends an
operation is conditional on still holding the lease
(``stores.transitions.transition(owner=...)``), and the heartbeat's renewal
fails once the lease is gone, which stops the worker (``LeaseLost``). Events
and steps a worker records along the way are appended, not conditional: a
worker that lost its lease stops at its next heartbeat.

*Helm slots*: a global cap on helm processes running at once across all
workers (STORE_MAX_CONCURRENT_HELM), a counting semaphore in Redis whose
entries expire, so a killed worker cannot leak a slot.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from datetime import timedelta

import redis
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from provisioning.errors import LeaseLost
from stores.models import Store

SLOTS_KEY = "storeplatform:helm-slots"


def acquire(store_id: str, owner: str, states) -> bool:
    now = timezone.now()
    return bool(
        Store.objects.filter(pk=store_id, status__in=list(states))
        .filter(
            Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now) | Q(lease_owner=owner)
        )
        .update(
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=settings.STORE_LEASE_SECONDS),
        )
    )


def renew(store_id: str, owner: str) -> None:
    expires = timezone.now() + timedelta(seconds=settings.STORE_LEASE_SECONDS)
    if not Store.objects.filter(pk=store_id, lease_owner=owner).update(lease_expires_at=expires):
        raise LeaseLost(f"store={store_id} lease taken over from {owner}")


def release(store_id: str, owner: str) -> None:
    Store.objects.filter(pk=store_id, lease_owner=owner).update(
        lease_owner="", lease_expires_at=None
    )


_ACQUIRE = """
local key, now, expires, limit, token = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]),
    tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZCARD', key) < limit then
    redis.call('ZADD', key, expires, token)
    return 1
end
return 0
"""

_redis: redis.Redis | None = None


def redis_client() -> redis.Redis:
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=5
        )
    return _redis


@contextlib.contextmanager
def helm_slot(tick=None, hold_seconds: int = 3600):
    """Wait for one of the global helm slots; ``tick`` runs while waiting."""
    conn = redis_client()
    acquire_slot = conn.register_script(_ACQUIRE)
    token = uuid.uuid4().hex
    while True:
        now = time.time()
        if acquire_slot(
            keys=[SLOTS_KEY],
            args=[now, now + hold_seconds, settings.STORE_MAX_CONCURRENT_HELM, token],
        ):
            break
        if tick:
            tick()
        time.sleep(0.05)
    try:
        yield
    finally:
        conn.zrem(SLOTS_KEY, token)

