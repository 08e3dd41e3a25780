"""Both store charts with the values switch `suspended` (issue 13), rendered
by the real helm: no pods, nothing requested, volumes kept, and the Ingresses
sent to the platform's paused page. No cluster: whether an ingress controller
follows the ExternalName backend is documented, not tested, here."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioning.tests import chartkit
from provisioning.tests.chartkit import (
    DEPLOY_VALUES,
    K8S_VERSIONS,
    of_kind,
    render,
    render_error,
    store_requests,
)

FIXTURES = Path(__file__).parent / "fixtures"
SHOP_SERVICE = {"woocommerce": "store-test-wordpress", "medusa": "store-test-medusa"}
RENDERINGS = [(chart, profile) for chart in ("woocommerce", "medusa")
              for profile in ("local", "vps")]
BACKEND = "storeplatform-web.storeplatform.svc.cluster.local"
DOMAIN = {"domains[0].host": "shop.example.org", "domains[0].secretName": "store-test-domain-tls"}
SUSPENDED = {"suspended": True, "paused.backend": BACKEND, "paused.port": 8080, **DOMAIN}


def render_store(chart: str, profile: str, set_values: dict) -> list[dict]:
    files = [DEPLOY_VALUES / f"{chart}-{profile}.yaml", FIXTURES / chart / "store-values.yaml"]
    return render(chart, files, set_values)


def backends(docs: list[dict]) -> set[tuple[str, str]]:
    """(host, backend service) of every Ingress rule."""
    return {
        (rule["host"], path["backend"]["service"]["name"])
        for ingress in of_kind(docs, "Ingress")
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }


def volumes(docs: list[dict]) -> tuple[set[str], list]:
    """The store's PersistentVolumeClaims and StatefulSet volume claims."""
    return ({p["metadata"]["name"] for p in of_kind(docs, "PersistentVolumeClaim")},
            [s["spec"].get("volumeClaimTemplates") for s in of_kind(docs, "StatefulSet")])


@pytest.fixture(scope="module", params=RENDERINGS, ids=lambda r: "-".join(r))
def suspended(request) -> tuple[str, str, list[dict]]:
    chart, profile = request.param
    return chart, profile, render_store(chart, profile, SUSPENDED)


def test_a_suspended_store_requests_no_cpu_and_no_memory(suspended):
    _, _, docs = suspended
    assert store_requests(docs) == (0, 0)
    assert store_requests(docs, "limits") == (0, 0)


def test_a_suspended_store_runs_no_pods_and_keeps_its_volumes(suspended):
    chart, profile, docs = suspended
    workloads = of_kind(docs, "Deployment") + of_kind(docs, "StatefulSet")
    assert workloads, "the chart has workloads to scale down"
    assert {w["metadata"]["name"]: w["spec"]["replicas"] for w in workloads} == {
        w["metadata"]["name"]: 0 for w in workloads}
    assert all(cron["spec"]["suspend"] is True for cron in of_kind(docs, "CronJob"))
    assert of_kind(docs, "Job") == []  # no setup Job either
    running = render_store(chart, profile, {})
    assert volumes(docs) == volumes(running)


def test_a_suspended_store_sends_every_host_to_the_paused_page(suspended):
    chart, profile, docs = suspended
    running = render_store(chart, profile, DOMAIN)
    assert {host for host, _ in backends(docs)} == {host for host, _ in backends(running)}
    assert {svc for _, svc in backends(docs)} == {"store-test-paused"}
    assert "shop.example.org" in {host for host, _ in backends(docs)}  # custom domains too
    [service] = [s for s in of_kind(docs, "Service")
                 if s["metadata"]["name"] == "store-test-paused"]
    assert service["spec"]["type"] == "ExternalName"
    assert service["spec"]["externalName"] == BACKEND
    assert [p["port"] for p in service["spec"]["ports"]] == [8080]
    ports = {path["backend"]["service"]["port"]["number"]
             for ingress in of_kind(docs, "Ingress") for rule in ingress["spec"]["rules"]
             for path in rule["http"]["paths"]}
    assert ports == {8080}


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_the_suspended_store_is_valid_kubernetes(suspended, version):
    _, _, docs = suspended
    chartkit.validate(docs, version)


@pytest.mark.parametrize("chart", ["woocommerce", "medusa"])
def test_a_running_store_serves_its_shop_and_has_no_paused_service(chart):
    docs = render_store(chart, "local", {"paused.backend": BACKEND, **DOMAIN})
    assert {svc for _, svc in backends(docs)} == {SHOP_SERVICE[chart]}
    assert all(s["spec"].get("type") != "ExternalName" for s in of_kind(docs, "Service"))
    assert all(w["spec"]["replicas"] == 1
               for w in of_kind(docs, "Deployment") + of_kind(docs, "StatefulSet"))
    cpu, memory = store_requests(docs)
    assert cpu > 0 and memory > 0


@pytest.mark.parametrize("chart", ["woocommerce", "medusa"])
def test_without_a_paused_backend_the_ingress_keeps_the_shops_service(chart):
    docs = render_store(chart, "local", {"suspended": True})
    assert {svc for _, svc in backends(docs)} == {SHOP_SERVICE[chart]}
    assert store_requests(docs) == (0, 0)


@pytest.mark.parametrize("chart", ["woocommerce", "medusa"])
def test_the_schema_refuses_a_paused_backend_that_is_not_a_dns_name(chart):
    files = [DEPLOY_VALUES / f"{chart}-local.yaml", FIXTURES / chart / "store-values.yaml"]
    error = render_error(chart, files, {"suspended": True, "paused.backend": "web:80/x y"})
    assert "paused" in error and "backend" in error
