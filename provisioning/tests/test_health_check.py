"""The drift check's view of pods (provisioning.kube.unready_pods), through
the fake Kubernetes API server: Job pods (the WooCommerce setup Job, the cron
Jobs) and finished pods never make a healthy store degraded; a serving pod
that is not ready still does."""

from __future__ import annotations

import uuid

import pytest

from provisioning import housekeeping, kube
from stores import constants as c
from stores.models import Store

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(api, cluster, eager) -> Store:
    with eager():
        response = api.post("/api/stores/", {"name": "Acme Shop", "engine": "woocommerce"},
                            format="json")
    assert response.status_code == 202, response.content
    store = Store.objects.get(pk=response.json()["id"])
    assert store.status == c.READY
    return store


def add_pod(cluster, store, name, phase, ready, owner_kind, owner_name, waiting=None,
            terminated=None):
    """A pod as the API server reports it, owned by a controller."""
    state = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
    if waiting:
        state = {"waiting": {"reason": waiting}}
    if terminated:
        state = {"terminated": {"reason": terminated, "exitCode": 1 if terminated == "Error"
                                else 0}}
    cluster.fake.cluster.create("pods", store.namespace, {
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/instance": store.release},
            "ownerReferences": [{
                "apiVersion": "batch/v1" if owner_kind == "Job" else "apps/v1",
                "kind": owner_kind, "name": owner_name, "uid": str(uuid.uuid4()),
                "controller": True, "blockOwnerDeletion": True,
            }],
        },
        "status": {"phase": phase, "containerStatuses": [{
            "name": "main", "ready": ready, "restartCount": 0, "image": "img",
            "imageID": "", "state": state}]},
    })


def serving_pods(cluster, store):
    add_pod(cluster, store, f"{store.release}-wordpress-7d4b9c-x2x", "Running", True,
            "ReplicaSet", f"{store.release}-wordpress-7d4b9c")
    add_pod(cluster, store, f"{store.release}-mariadb-0", "Running", True,
            "StatefulSet", f"{store.release}-mariadb")


def test_a_failed_first_setup_attempt_does_not_degrade_a_healthy_store(store, cluster):
    serving_pods(cluster, store)
    job = f"{store.release}-setup-r1"
    add_pod(cluster, store, f"{job}-a1b2c", "Failed", False, "Job", job, terminated="Error")
    add_pod(cluster, store, f"{job}-d3e4f", "Succeeded", False, "Job", job,
            terminated="Completed")

    assert kube.unready_pods(store.namespace) == []
    counts = housekeeping.check_health()

    store.refresh_from_db()
    assert (counts["degraded"], store.status) == (0, c.READY)


def test_a_cron_run_waiting_or_running_does_not_degrade_a_store(store, cluster):
    serving_pods(cluster, store)
    cron = f"{store.release}-cron-29400000"
    add_pod(cluster, store, f"{cron}-p1", "Pending", False, "Job", cron,
            waiting="ContainerCreating")

    housekeeping.check_health()

    store.refresh_from_db()
    assert store.status == c.READY


def test_a_serving_pod_that_is_not_ready_still_degrades_the_store(store, cluster):
    serving_pods(cluster, store)
    job = f"{store.release}-setup-r1"
    add_pod(cluster, store, f"{job}-a1b2c", "Failed", False, "Job", job, terminated="Error")
    add_pod(cluster, store, f"{store.release}-wordpress-7d4b9c-y3y", "Running", False,
            "ReplicaSet", f"{store.release}-wordpress-7d4b9c", waiting="CrashLoopBackOff")

    assert kube.unready_pods(store.namespace) == [
        f"{store.release}-wordpress-7d4b9c-y3y (CrashLoopBackOff)"]
    housekeeping.check_health()

    store.refresh_from_db()
    assert (store.status, store.status_reason) == (c.DEGRADED, c.REASON_PODS_NOT_READY)
    assert "setup" not in store.status_message
