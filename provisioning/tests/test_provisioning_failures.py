"""Failures end in a plain-words reason with diagnostics, quickly.

Faults are injected at the boundaries: the fake helm (helm's own error text
and exit codes) and the fake Kubernetes API (refusing, throttling)."""

import pytest

from stores import constants as c
from stores.models import CommandRecord, Store, StoreCredentials

pytestmark = pytest.mark.django_db


def create(api, eager, name="Acme Shop", engine="woocommerce"):
    with eager():
        response = api.post("/api/stores/", {"name": name, "engine": engine}, format="json")
    assert response.status_code == 202, response.content
    return Store.objects.get(pk=response.json()["id"])


def test_a_store_fails_fast_when_no_cluster_answers(api, eager, cluster):
    cluster.fake.pause()
    store = create(api, eager)
    assert store.status == c.FAILED
    assert store.status_reason == c.REASON_CLUSTER_UNREACHABLE
    assert store.status_title == "The Kubernetes cluster could not be reached"
    assert store.status_message == (
        f"Nothing answered at {cluster.fake.url} (connection refused).")
    assert "Connection refused" in store.raw_output  # urllib3's own words, in the details
    # Each attempt: the step says why it stopped, then a plain retry notice.
    timeline = [(e.kind, e.message) for e in store.events.exclude(kind=c.EVENT_STATUS)]
    assert timeline[:3] == [
        (c.EVENT_WARNING, f"Preparing namespace stopped: {store.status_message}"),
        (c.EVENT_INFO, "Trying again in a moment (attempt 2 of 3)."),
        (c.EVENT_INFO, "Continuing the provision."),
    ]
    assert [m for _, m in timeline].count("Trying again in a moment (attempt 3 of 3).") == 1
    assert not [m for _, m in timeline if "urllib3" in m or "HTTPConnection" in m]


def test_a_store_fails_with_a_clear_reason_when_no_cluster_is_configured(api, eager, settings,
                                                                      tmp_path, monkeypatch):
    settings.KUBECONFIG = str(tmp_path / "missing-kubeconfig")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    store = create(api, eager)
    assert store.status == c.FAILED
    assert store.status_reason == c.REASON_NOT_CONFIGURED
    assert store.status_title == "No Kubernetes cluster is configured"


@pytest.mark.parametrize(("code", "reason", "message", "expected_reason", "title"), [
    (400, "BadRequest", 'Namespace "x" is invalid: metadata.labels: Invalid value',
     c.REASON_CLUSTER_REJECTED, "The Kubernetes API refused the request (HTTP 400)"),
    (422, "Invalid", 'Namespace "x" is invalid: metadata.name: Invalid value',
     c.REASON_CLUSTER_REJECTED, "The Kubernetes API refused the request (HTTP 422)"),
    (403, "Forbidden", 'namespaces is forbidden: User "system:serviceaccount:sp:platform" '
     'cannot create resource "namespaces" in API group "" at the cluster scope',
     c.REASON_CLUSTER_FORBIDDEN, "The cluster does not allow the platform to do this (HTTP 403)"),
    (401, "Unauthorized", "Unauthorized",
     c.REASON_CLUSTER_UNAUTHORIZED,
     "The cluster did not accept the platform's credentials (HTTP 401)"),
])
def test_a_refusal_of_the_kubernetes_api_fails_at_once_with_its_own_reason(
    api, eager, cluster, code, reason, message, expected_reason, title
):
    cluster.fake.faults["refuse"] = [{"method": "POST", "path": "/api/v1/namespaces",
                                      "code": code, "reason": reason, "message": message}]
    store = create(api, eager)
    assert (store.status, store.status_reason, store.status_title) == (
        c.FAILED, expected_reason, title)
    assert store.status_message == f"The Kubernetes API said: {message}"
    assert f'"code": {code}' in store.raw_output  # the whole Status answer, as details
    assert store.status_advice
    creates = CommandRecord.objects.filter(store=store, argv__contains=["namespace"])
    assert creates.count() == 1  # refused answers are not retried


def test_a_page_from_something_that_is_not_kubernetes_says_to_check_the_address(
    api, eager, cluster
):
    page = "<html><head><title>404 Not Found</title></head><body>nginx</body></html>"
    cluster.fake.faults["refuse"] = [{"path": "/api/v1/namespaces", "code": 404, "html": page}]
    store = create(api, eager)
    assert store.status_reason == c.REASON_CLUSTER_REJECTED
    assert store.status_message == (
        f"{cluster.fake.url} answered HTTP 404 with an HTML page that does not come from a "
        "Kubernetes API: check the server address in the kubeconfig.")
    assert store.raw_output == page


def test_the_cluster_coming_back_during_backoff_lets_the_store_succeed(api, eager, cluster):
    cluster.fake.faults["throttle"] = 1  # the first API call is refused with 429
    store = create(api, eager)
    assert store.status == c.READY
    assert store.events.filter(reason=c.REASON_CLUSTER_THROTTLED).exists()


def test_a_helm_timeout_fails_with_pod_diagnostics(api, eager, cluster):
    cluster.helm_faults({"command": "upgrade", "action": "fail", "stderr":
                         "resource not ready, name: acme-web, kind: Deployment, status: "
                         "InProgress\ncontext deadline exceeded"})
    store = create(api, eager)
    assert store.status == c.FAILED
    assert store.status_reason == c.REASON_TIMED_OUT
    assert "resource not ready" in store.status_message
    assert "helm_stderr" in store.diagnostics
    assert "cluster" in store.diagnostics  # pods and warning events of the namespace


def test_a_chart_values_error_fails_at_once_with_helms_message(api, eager, cluster, settings,
                                                              tmp_path):
    # A profile values file that the chart's schema rejects: real helm renders.
    bad = tmp_path / "woocommerce-local.yaml"
    bad.write_text("resources:\n  wordpress:\n    requests:\n      cpu: -5\n")
    settings.VALUES_DIR = tmp_path
    store = create(api, eager)
    assert store.status == c.FAILED
    assert store.status_reason == c.REASON_CHART_ERROR
    upgrades = CommandRecord.objects.filter(store=store, argv__contains=["upgrade"])
    assert upgrades.count() == 1  # not retried


def test_a_quota_rejection_fails_before_helms_timeout(api, eager, cluster):
    cluster.helm_faults({"command": "upgrade", "action": "quota"})
    store = create(api, eager)
    assert store.status == c.FAILED
    assert store.status_reason == c.REASON_QUOTA_EXCEEDED
    assert "exceeded quota" in store.status_message
    record = CommandRecord.objects.get(store=store, argv__contains=["upgrade"])
    assert record.duration_ms < 30_000  # helm's --timeout is 600s; the events said why
    assert record.exit_code is None or record.exit_code != 0


def test_a_storefront_that_never_answers_fails_the_store(api, eager, cluster):
    cluster.fake.faults["storefront_down"] = {"acme-shop.localtest.me"}
    store = create(api, eager)
    assert store.status == c.FAILED
    assert store.status_reason == c.REASON_STOREFRONT_DOWN
    assert "HTTP 503" in store.status_message


def test_retry_reuses_the_same_credentials(api, eager, cluster):
    cluster.helm_faults({"command": "upgrade", "action": "fail", "stderr": "boom"})
    store = create(api, eager)
    assert store.status == c.FAILED
    first = StoreCredentials.objects.get(store=store).values
    with eager():
        assert api.post(f"/api/stores/{store.id}/retry/").status_code == 202
    store.refresh_from_db()
    assert store.status == c.READY
    assert StoreCredentials.objects.get(store=store).values == first
    statuses = [e.status_to for e in store.events.filter(kind=c.EVENT_STATUS)]
    assert statuses == [c.REQUESTED, c.PROVISIONING, c.FAILED, c.REQUESTED, c.PROVISIONING,
                        c.READY]


def test_secrets_never_reach_events_or_command_records(api, eager, cluster):
    import base64

    cluster.helm_faults({"command": "upgrade", "action": "fail", "stderr": "boom"})
    store = create(api, eager)
    creds = StoreCredentials.objects.get(store=store).values
    # The cluster has them, in the store's Secret, where the chart reads them.
    secret = cluster.fake.cluster.get("secrets", store.namespace, "store-credentials")[1]
    assert base64.b64decode(secret["data"]["admin-password"]).decode() == creds[
        "admin-password"]
    with eager():
        api.post(f"/api/stores/{store.id}/retry/")
        api.delete(f"/api/stores/{store.id}/")
    recorded = " ".join(
        [str(r.argv) + r.stdout + r.stderr for r in CommandRecord.objects.filter(store=store)]
        + [e.message + str(e.details) for e in store.events.all()]
    )
    assert CommandRecord.objects.filter(store=store).count() >= 6
    secret_keys = ("admin-password", "db-password", "db-root-password", "jwt-secret",
                   "cookie-secret")
    for key in secret_keys:
        assert creds[key] not in recorded, key


def test_deleting_a_failed_store_removes_its_namespace(api, eager, cluster):
    cluster.helm_faults({"command": "upgrade", "action": "fail", "stderr": "boom"})
    store = create(api, eager)
    assert cluster.managed_namespaces() == [store.namespace]
    with eager():
        api.delete(f"/api/stores/{store.id}/")
    store.refresh_from_db()
    assert store.status == c.DELETED
    assert cluster.managed_namespaces() == []
    assert not StoreCredentials.objects.filter(store=store).exists()


def test_a_namespace_stuck_terminating_is_reported_with_its_finalizers(api, eager, cluster,
                                                                      settings):
    settings.STORE_NAMESPACE_WAIT = 1
    store = create(api, eager)
    cluster.fake.faults["stuck_namespaces"] = {store.namespace}
    with eager():
        api.delete(f"/api/stores/{store.id}/")
    store.refresh_from_db()
    assert store.status == c.FAILED
    assert store.status_reason == c.REASON_NAMESPACE_STUCK
    assert "finalizers remaining" in store.status_message
    # The finalizer goes away; retrying the deletion finishes it.
    cluster.fake.faults["stuck_namespaces"] = set()
    with eager():
        assert api.post(f"/api/stores/{store.id}/retry/").status_code == 202
    store.refresh_from_db()
    assert store.status == c.DELETED
    assert cluster.managed_namespaces() == []


def test_both_engines_provision_through_their_charts(api, eager, cluster, settings):
    settings.STORE_MAX_PER_USER = 5
    woo = create(api, eager, "Woo Shop", "woocommerce")
    medusa = create(api, eager, "Medusa Shop", "medusa")
    assert (woo.status, medusa.status) == (c.READY, c.READY), (
        woo.status_message, medusa.status_message)
    assert medusa.admin_url == "http://medusa-shop.localtest.me/app"
    ingress_objects = [o for o in cluster.fake.objects_in(medusa.namespace)
                       if o.startswith("ingresses/")]
    assert ingress_objects
