"""One store from the API's 202 to ready and back to nothing, in-process:
the tasks run eagerly against the fake cluster and the fake helm, which
renders the real chart with the real helm."""

import pytest

from stores import constants as c
from stores.models import CommandRecord, Store

pytestmark = pytest.mark.django_db


def statuses(store_id):
    store = Store.objects.get(pk=store_id)
    return [e.status_to for e in store.events.filter(kind=c.EVENT_STATUS)]


def test_a_created_store_becomes_ready_and_a_deleted_one_leaves_nothing(api, cluster, eager):
    with eager():
        response = api.post("/api/stores/", {"name": "Acme Shop", "engine": "woocommerce"},
                            format="json")
    assert response.status_code == 202, response.json()
    store_id = response.json()["id"]
    store = Store.objects.get(pk=store_id)
    assert store.status == c.READY, (store.status_reason, store.status_message)
    assert statuses(store_id) == [c.REQUESTED, c.PROVISIONING, c.READY]
    assert store.ready_at is not None
    assert store.chart_version == "0.1.0"
    assert store.helm_revision == 1
    assert cluster.managed_namespaces() == [f"store-{store_id}"]

    with eager():
        response = api.delete(f"/api/stores/{store_id}/")
    assert response.status_code == 202
    store.refresh_from_db()
    assert store.status == c.DELETED, (store.status_reason, store.status_message)
    assert statuses(store_id)[-2:] == [c.DELETING, c.DELETED]
    assert cluster.managed_namespaces() == []
    assert cluster.fake.objects_in(f"store-{store_id}") == []
    helm_commands = [r.argv[1] for r in CommandRecord.objects.filter(store_id=store_id,
                                                                     tool="helm")]
    # The release state is read from helm's storage, not with `helm status`;
    # the history is read once, after the release changed, for the pages.
    assert helm_commands == ["upgrade", "history", "uninstall"]


@pytest.mark.parametrize("engine", ["woocommerce", "medusa"])
def test_https_stores_get_tls_through_each_chart(api, cluster, eager, settings, engine):
    """The values the platform generates for a VPS (https, cert-manager) are
    accepted by each chart: rendered by the real helm, applied to the fake."""
    cluster.use_tls("per-store", issuer="letsencrypt-prod")
    settings.STORE_INGRESS_CLASS = "traefik"
    settings.STORE_VALUES_PROFILE = "vps"
    with eager():
        response = api.post("/api/stores/", {"name": "Secure Shop", "engine": engine},
                            format="json")
    store = Store.objects.get(pk=response.json()["id"])
    assert store.status == c.READY, store.status_message
    assert store.storefront_url == "https://secure-shop.localtest.me/"
    [ingress] = cluster.fake.cluster.list("ingresses", store.namespace, "")
    assert ingress["spec"]["ingressClassName"] == "traefik"
    assert ingress["spec"]["tls"][0]["hosts"] == ["secure-shop.localtest.me"]
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == (
        "letsencrypt-prod")
