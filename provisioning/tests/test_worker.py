"""A real Celery worker process on real Redis and PostgreSQL takes a store
from POST /api/stores/ to ready, then to deleted."""

import pytest

from stores import constants as c
from stores.models import Store

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def status_of(store_id):
    return Store.objects.filter(pk=store_id).values_list("status", flat=True).first()


def test_a_real_worker_provisions_and_deletes_a_store(api, worker, cluster, wait_for):
    response = api.post("/api/stores/", {"name": "Worker Shop", "engine": "woocommerce"},
                        format="json")
    assert response.status_code == 202
    store_id = response.json()["id"]
    wait_for(lambda: status_of(store_id) in (c.READY, c.FAILED), timeout=90,
             message=f"store never settled; worker log:\n{worker.log()[-3000:]}")
    store = Store.objects.get(pk=store_id)
    assert store.status == c.READY, (store.status_reason, store.status_message)

    assert api.delete(f"/api/stores/{store_id}/").status_code == 202
    wait_for(lambda: status_of(store_id) == c.DELETED, timeout=60,
             message=f"store never deleted; worker log:\n{worker.log()[-3000:]}")
    assert cluster.managed_namespaces() == []
    statuses = [e.status_to for e in store.events.filter(kind=c.EVENT_STATUS)]
    assert statuses == [c.REQUESTED, c.PROVISIONING, c.READY, c.DELETING, c.DELETED]


def test_several_stores_provision_concurrently(api, worker, cluster, wait_for, settings):
    settings.STORE_MAX_PER_USER = 4
    cluster.helm_faults({"command": "upgrade", "action": "sleep", "seconds": 2, "times": -1})
    ids = [api.post("/api/stores/", {"name": f"Parallel {n}", "engine": "woocommerce"},
                    format="json").json()["id"] for n in range(2)]
    wait_for(lambda: all(status_of(i) == c.READY for i in ids), timeout=90,
             message=f"worker log:\n{worker.log()[-3000:]}")
    stores = Store.objects.filter(pk__in=ids)
    # Both helm runs overlapped in time: concurrency 2, each takes 2+ s.
    spans = sorted(
        (s.events.get(status_to=c.PROVISIONING).created_at, s.ready_at) for s in stores
    )
    assert spans[1][0] < spans[0][1]


def test_a_worker_serves_its_helm_metrics(api, start_celery, cluster, wait_for, tmp_path):
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    worker = start_celery("worker", WORKER_METRICS_PORT=str(port),
                          PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"))
    store_id = api.post("/api/stores/", {"name": "Measured", "engine": "woocommerce"},
                        format="json").json()["id"]
    wait_for(lambda: status_of(store_id) == c.READY, timeout=90,
             message=worker.log()[-2000:])
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    upgrade = [line for line in text.splitlines() if line.startswith(
        "storeplatform_command_duration_seconds_count") and 'command="upgrade"' in line]
    assert upgrade and float(upgrade[0].rsplit(" ", 1)[1]) == 1
    assert 'storeplatform_operation_duration_seconds_count{engine="woocommerce",' \
           'operation="provision",outcome="ready"} 1.0' in text
