"""``/metrics`` in Prometheus format.

Store gauges (by engine and state, stuck past deadline) and the Celery queue
depths are read from the database and the broker at scrape time, so every web replica reports the
same truth. Histograms and counters (helm durations, operation durations,
failures) come from the worker processes through prometheus-client's
multiprocess directory (PROMETHEUS_MULTIPROC_DIR) when it is set, else from
this process.

Protected by ``Authorization: Bearer <METRICS_TOKEN>`` when METRICS_TOKEN is
set. Without a token it is open only where METRICS_PUBLIC is true (the
default with DEBUG on); in production it then refuses, saying why.
"""

import hmac
import logging
import os

from django.conf import settings
from django.db import models
from django.db.models import Count, Max
from django.http import HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from stores import constants as c
from stores.models import Backup, Store, WebhookDelivery

log = logging.getLogger(__name__)

class StoreCollector:
    def collect(self):
        by_state = GaugeMetricFamily(
            "storeplatform_stores", "Stores by engine and status.", labels=["engine", "status"]
        )
        rows = Store.objects.values("engine", "status").annotate(n=Count("id"))
        for row in rows:
            by_state.add_metric([row["engine"], row["status"]], row["n"])
        yield by_state

        stuck = GaugeMetricFamily(
            "storeplatform_stores_stuck",
            "Stores in a busy state past their deadline.", labels=["status"],
        )
        now = timezone.now()
        stuck_rows = (
            Store.objects.filter(status__in=list(c.BUSY_STATES), deadline_at__lt=now)
            .values("status").annotate(n=Count("id"))
        )
        counts = {row["status"]: row["n"] for row in stuck_rows}
        for status in sorted(c.BUSY_STATES):
            stuck.add_metric([status], counts.get(status, 0))
        yield stuck

        depth = GaugeMetricFamily(
            "storeplatform_celery_queue_depth", "Tasks waiting in each Celery queue.",
            labels=["queue"],
        )
        for queue, count in queue_depths().items():
            depth.add_metric([queue], count)
        yield depth


def queue_depths() -> dict[str, int]:
    """Messages waiting in each queue Celery consumes, asked of the broker
    Celery is configured with (CELERY_BROKER_URL), through kombu, so it holds
    for any transport and any queue names. A broker that does not answer
    gives no samples (and a warning in the log), not a false zero."""
    from storeplatform.celery import app

    try:
        with app.connection_for_read() as conn:
            channel = conn.default_channel
            return {
                name: queue(channel).queue_declare().message_count
                for name, queue in app.amqp.queues.items()
            }
    except Exception as exc:  # kombu raises the transport's own errors
        log.warning("metrics: could not read the Celery queue depths from the broker: %s", exc)
        return {}


class WebhookCollector:
    """Webhook deliveries by status, from the database (every web replica
    agrees; the per-attempt counters come from the workers)."""

    def collect(self):
        by_status = GaugeMetricFamily(
            "storeplatform_webhook_deliveries", "Webhook deliveries by status.",
            labels=["status"],
        )
        counts = dict(WebhookDelivery.objects.values_list("status").annotate(n=Count("id")))
        for status, _ in WebhookDelivery._meta.get_field("status").choices:
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status


class BackupCollector:
    """Backups (issue 12) from the database: the age of each live store's
    last good backup (an alert fires on a store with none in 36 h; a store
    with no good backup at all reports its own age), and backups by engine
    and status."""

    def collect(self):
        now = timezone.now()
        age = GaugeMetricFamily(
            "storeplatform_backup_last_success_age_seconds",
            "Seconds since each running store's last verified backup (since its creation "
            "when it has none).", labels=["store", "engine"],
        )
        stores = (Store.objects.filter(status__in=list(c.RUNNING_STATES), owner__isnull=False)
                  .annotate(last_good=Max("backups__finished_at",
                                          filter=models.Q(backups__status=c.BACKUP_SUCCEEDED)))
                  .values_list("id", "engine", "last_good", "created_at"))
        for store_id, engine, last_good, created in stores:
            age.add_metric([store_id, engine], (now - (last_good or created)).total_seconds())
        yield age
        by_status = GaugeMetricFamily(
            "storeplatform_backups", "Backups by engine and status.",
            labels=["engine", "status"])
        rows = Backup.objects.values("store__engine", "status").annotate(n=Count("id"))
        for row in rows:
            by_status.add_metric([row["store__engine"], row["status"]], row["n"])
        yield by_status


STORE_REGISTRY = CollectorRegistry()
STORE_REGISTRY.register(BackupCollector())
STORE_REGISTRY.register(StoreCollector())
STORE_REGISTRY.register(WebhookCollector())


def _process_registry() -> CollectorRegistry:
    """This process's own metrics, or every process's in multiprocess mode."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def metrics(request):
    token = settings.METRICS_TOKEN
    if not token and not settings.METRICS_PUBLIC:
        return HttpResponse("metrics are off: set METRICS_TOKEN (or METRICS_PUBLIC=true where "
                            "/metrics is fenced by the network)\n", status=403,
                            content_type="text/plain")
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return HttpResponse("metrics need a bearer token\n", status=401,
                                content_type="text/plain")
    body = generate_latest(_process_registry()) + generate_latest(STORE_REGISTRY)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
