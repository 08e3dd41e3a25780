"""The change_url operation is built like every other (provisioning/
operations.py): retried on transient errors, resumed after a lost worker,
retried by the owner after a failure; and every other operation keeps the
store's domains (they come from the database, not from the last request)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning import tasks
from provisioning.tests.test_reliability import left_by_a_dead_worker
from stores import constants as c
from stores import domains
from stores.models import Domain, Store
from stores.services import Actor

pytestmark = pytest.mark.django_db

HOST = "shop.example.com"


@pytest.fixture
def store(api, eager, cluster):
    with eager():
        response = api.post("/api/stores/", {"name": "Acme Shop", "engine": "woocommerce"},
                            format="json")
    store = Store.objects.get(pk=response.json()["id"])
    assert store.status == c.READY, store.status_message
    return store


def verified_domain(store) -> Domain:
    """A domain whose DNS was verified (as stores.domains leaves it)."""
    return Domain.objects.create(store=store, hostname=HOST, status=c.DOMAIN_VERIFIED,
                                 verified_at=timezone.now())


def served_hosts(cluster, store) -> set[str]:
    return {i["spec"]["rules"][0]["host"]
            for i in cluster.fake.cluster.list("ingresses", store.namespace, "")}


def test_an_address_change_survives_a_throttled_api(api, eager, store, cluster):
    verified_domain(store)
    cluster.fake.faults["throttle"] = 1
    with eager():
        assert domains.request_address_change(Actor(store.owner, via="api"), store)
    store.refresh_from_db()
    assert store.status == c.READY, store.status_message
    assert store.events.filter(reason=c.REASON_CLUSTER_THROTTLED,
                               message__contains="Trying again").exists()
    assert Domain.objects.get().status == c.DOMAIN_ACTIVE
    assert served_hosts(cluster, store) == {store.host, HOST}


def test_an_address_change_whose_worker_died_is_resumed_by_the_reconciler(eager, store,
                                                                         cluster):
    verified_domain(store)
    left_by_a_dead_worker(store.id, c.CHANGING_URL, c.OP_CHANGE_URL)
    with eager():
        assert tasks.reconcile()["resumed"] == 1
    store.refresh_from_db()
    assert store.status == c.READY, store.status_message
    assert store.events.filter(reason=c.REASON_WORKER_LOST).exists()
    assert served_hosts(cluster, store) == {store.host, HOST}


def test_a_failed_address_change_is_retried_by_the_owner(api, eager, store, cluster):
    verified_domain(store)
    cluster.helm_faults({"command": "upgrade", "action": "fail", "stderr": "boom"})
    with eager():
        domains.request_address_change(Actor(store.owner, via="api"), store)
    store.refresh_from_db()
    assert (store.status, store.operation) == (c.FAILED, c.OP_CHANGE_URL)
    with eager():
        response = api.post(f"/api/stores/{store.id}/retry/")
    assert response.json()["status"] == c.CHANGING_URL
    store.refresh_from_db()
    assert store.status == c.READY
    statuses = list(store.events.filter(kind=c.EVENT_STATUS).values_list("status_to", flat=True))
    assert statuses[-4:] == [c.CHANGING_URL, c.FAILED, c.CHANGING_URL, c.READY]


def test_an_address_change_past_its_deadline_waiting_for_a_certificate_says_so(store):
    Store.objects.filter(pk=store.id).update(
        status=c.CHANGING_URL, operation=c.OP_CHANGE_URL, started_at=timezone.now(),
        deadline_at=timezone.now() - timedelta(seconds=1),
        current_step=c.STEP_WAITING_FOR_CERTIFICATE)
    assert tasks.reconcile()["failed"] == 1
    store.refresh_from_db()
    assert (store.status, store.status_reason) == (c.FAILED, c.REASON_CERTIFICATE_NOT_ISSUED)


def test_an_upgrade_keeps_the_custom_domains(api, eager, store, cluster):
    Domain.objects.create(store=store, hostname=HOST, status=c.DOMAIN_ACTIVE, is_primary=True)
    with eager():
        assert api.post(f"/api/stores/{store.id}/upgrade/").status_code == 202
    store.refresh_from_db()
    assert store.status == c.READY, store.status_message
    assert served_hosts(cluster, store) == {store.host, HOST}
