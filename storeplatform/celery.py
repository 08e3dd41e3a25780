import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "storeplatform.settings")

app = Celery("storeplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["provisioning"])


@signals.worker_init.connect
def preload_kubernetes_client(**kwargs):
    """Before the pool forks: its processes inherit the imported client."""
    from provisioning import kube

    kube.preload()


@signals.worker_init.connect
def serve_worker_metrics(**kwargs):
    """Expose the pool processes' metrics (helm durations, operations,
    failures) on WORKER_METRICS_PORT.

    Each prefork child writes its samples into PROMETHEUS_MULTIPROC_DIR; this
    server, in the worker's main process, adds them up. Web pods serve the
    store gauges on /metrics; Prometheus scrapes both (see charts/platform).
    """
    port = int(os.environ.get("WORKER_METRICS_PORT") or 0)
    if not port or not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(port, registry=registry)


@signals.worker_process_shutdown.connect
def forget_dead_pool_process(pid=None, **kwargs):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and pid:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
