"""HTTPS in both store charts (issue 11), rendered offline by the real helm.

Every TLS mode the platform generates values for (off, wildcard, per-store,
each with and without a custom domain) against each profile: lint, schemas,
what cert-manager is asked for, the redirects, the quota's room for
cert-manager's HTTP-01 solver, and the network flows the policies allow and
deny, judged by a small NetworkPolicy evaluator (netpol.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from provisioning.tests import chartkit
from provisioning.tests.chartkit import DEPLOY_VALUES, K8S_VERSIONS, of_kind, render
from provisioning.tests.netpol import Address, Network, Pod, pods_of

FIXTURES = Path(__file__).parent / "fixtures"
RUNBOOK = chartkit.ROOT / "docs" / "vps-runbook.md"
NAMESPACE = "store-test"
HOST = "acme-shop.localtest.me"
DOMAIN = {"host": "shop.example.com", "secretName": "store-test-domain-0123456789-tls"}
MODES = {
    "off": {"ingress": {"tls": {"enabled": False, "mode": "per-store", "clusterIssuer": "",
                                "secretName": ""}}},
    "wildcard": {"ingress": {"tls": {"enabled": True, "mode": "wildcard",
                                     "clusterIssuer": "letsencrypt-http", "secretName": ""}}},
    "per-store": {"ingress": {"tls": {"enabled": True, "mode": "per-store",
                                      "clusterIssuer": "letsencrypt-prod",
                                      "secretName": "store-test-tls"}}},
}
CHARTS = ("woocommerce", "medusa")
PROFILES = ("local", "vps")
# cert-manager's defaults for the HTTP-01 solver pod (controller flags
# --acme-http01-solver-resource-{request,limit}-{cpu,memory}).
SOLVER_REQUESTS = (10, 64 * 2**20)
SOLVER_LIMITS = (100, 64 * 2**20)


def generated(mode: str, *, domain: bool = False, primary: bool = False) -> dict:
    values = yaml.safe_load((FIXTURES / "woocommerce" / "store-values.yaml").read_text())
    values["store"]["scheme"] = "http" if mode == "off" else "https"
    values["ingress"]["tls"] = dict(MODES[mode]["ingress"]["tls"])
    if domain:
        values["domains"] = [DOMAIN]
    if primary:
        values["store"]["publicHost"] = DOMAIN["host"]
    return values


def render_mode(tmp_path, chart: str, profile: str, mode: str, **kwargs) -> list[dict]:
    flags = "-".join(k for k, v in sorted(kwargs.items()) if v)
    path = tmp_path / f"{chart}-{profile}-{mode}-{flags}.yaml"
    path.write_text(yaml.safe_dump(generated(mode, **kwargs)))
    return render(chart, [DEPLOY_VALUES / f"{chart}-{profile}.yaml", path], release=NAMESPACE,
                  namespace=NAMESPACE)


VARIANTS = [(mode, domain) for mode in MODES for domain in (False, True)]


class Renders(dict):
    """(chart, profile, mode, with a primary custom domain) -> documents,
    each rendered once, when a test first asks for it."""

    def __init__(self, tmp_path):
        super().__init__()
        self.tmp_path = tmp_path

    def __missing__(self, key):
        chart, profile, mode, domain = key
        self[key] = render_mode(self.tmp_path, chart, profile, mode, domain=domain,
                                primary=domain)
        return self[key]


@pytest.fixture(scope="module")
def renders(tmp_path_factory) -> Renders:
    return Renders(tmp_path_factory.mktemp("https-values"))


def ingresses(docs: list[dict]) -> dict[str, dict]:
    return {i["spec"]["rules"][0]["host"]: i for i in of_kind(docs, "Ingress")}


def annotations(ingress: dict) -> dict:
    return ingress["metadata"].get("annotations") or {}


# --- lint and schemas ------------------------------------------------------------


@pytest.mark.parametrize("chart", CHARTS)
@pytest.mark.parametrize("mode", MODES)
def test_each_chart_lints_strictly_in_each_tls_mode_with_a_domain(tmp_path, chart, mode):
    for profile in PROFILES:
        path = tmp_path / "values.yaml"
        path.write_text(yaml.safe_dump(generated(mode, domain=True, primary=True)))
        chartkit.lint(chart, [DEPLOY_VALUES / f"{chart}-{profile}.yaml", path])


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_rendering_is_valid_kubernetes_and_valid_traefik(renders, version):
    # What the TLS modes change (the rest is validated by each chart's tests,
    # and the schema check costs about half a second per document).
    changed = {"Ingress", "NetworkPolicy", "Middleware", "Deployment", "Job"}
    for chart in CHARTS:
        for mode in MODES:
            docs = renders[(chart, "vps", mode, True)]
            chartkit.validate([d for d in docs if d["kind"] in changed], version)


@pytest.mark.parametrize("chart", CHARTS)
def test_a_custom_domain_needs_an_issuer_even_in_wildcard_mode(tmp_path, chart):
    values = generated("wildcard", domain=True)
    values["ingress"]["tls"]["clusterIssuer"] = ""
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    error = chartkit.render_error(chart, [path])
    assert "/ingress/tls/clusterIssuer" in error, error


@pytest.mark.parametrize("chart", CHARTS)
@pytest.mark.parametrize(("set_values", "named"), [
    ({"ingress.tls.mode": "letsencrypt"}, "/ingress/tls/mode"),
    ({"ingress.controller": "haproxy"}, "/ingress/controller"),
    ({"store.publicHost": "Not A Host"}, "/store/publicHost"),
    ({"domains[0].host": "*.example.com", "domains[0].secretName": "x"}, "/domains/0/host"),
])
def test_the_schema_rejects_bad_https_values(chart, set_values, named):
    error = chartkit.render_error(chart, [FIXTURES / "woocommerce" / "store-values.yaml"],
                                  set_values)
    assert named in error, error


# --- what cert-manager is asked for ----------------------------------------------


@pytest.mark.parametrize("chart", CHARTS)
def test_per_store_mode_asks_cert_manager_for_the_store_host(renders, chart):
    store = ingresses(renders[(chart, "vps", "per-store", False)])[HOST]
    assert annotations(store)["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    assert store["spec"]["tls"] == [{"hosts": [HOST], "secretName": "store-test-tls"}]


@pytest.mark.parametrize("chart", CHARTS)
def test_wildcard_mode_serves_the_store_host_with_the_default_certificate(renders, chart):
    store = ingresses(renders[(chart, "vps", "wildcard", False)])[HOST]
    assert "cert-manager.io/cluster-issuer" not in annotations(store)
    # A TLS entry without secretName: traefik's default TLSStore, or
    # ingress-nginx's --default-ssl-certificate, serves it.
    assert store["spec"]["tls"] == [{"hosts": [HOST]}]


@pytest.mark.parametrize("chart", CHARTS)
@pytest.mark.parametrize("mode", ["wildcard", "per-store"])
def test_a_custom_domain_gets_its_own_ingress_and_http01_certificate_in_both_modes(
        renders, chart, mode):
    docs = renders[(chart, "vps", mode, True)]
    domain = ingresses(docs)[DOMAIN["host"]]
    assert domain["metadata"]["name"] == "store-test-domain-0123456789"
    assert annotations(domain)["cert-manager.io/cluster-issuer"] == MODES[mode]["ingress"][
        "tls"]["clusterIssuer"]
    assert domain["spec"]["tls"] == [{"hosts": [DOMAIN["host"]],
                                      "secretName": DOMAIN["secretName"]}]
    backend = domain["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    store_backend = ingresses(docs)[HOST]["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend == store_backend


@pytest.mark.parametrize("chart", CHARTS)
def test_without_tls_nothing_asks_for_a_certificate_or_redirects(renders, chart):
    docs = renders[(chart, "vps", "off", False)]
    for ingress in of_kind(docs, "Ingress"):
        assert "tls" not in ingress["spec"]
        assert annotations(ingress) == {}
    assert of_kind(docs, "Middleware") == []


# --- redirects -------------------------------------------------------------------


def middlewares(docs) -> dict[str, dict]:
    return {m["metadata"]["name"].removeprefix("store-test-"): m["spec"]
            for m in of_kind(docs, "Middleware")}


@pytest.mark.parametrize("chart", CHARTS)
@pytest.mark.parametrize("mode", ["wildcard", "per-store"])
def test_plain_http_redirects_to_https_through_a_traefik_middleware(renders, chart, mode):
    docs = renders[(chart, "vps", mode, False)]
    assert middlewares(docs) == {"https-redirect": {"redirectScheme": {
        "scheme": "https", "permanent": True}}}
    store = ingresses(docs)[HOST]
    assert annotations(store)["traefik.ingress.kubernetes.io/router.middlewares"] == (
        "store-test-store-test-https-redirect@kubernetescrd")


@pytest.mark.parametrize("chart", CHARTS)
def test_the_platform_host_redirects_to_the_primary_domain(renders, chart):
    docs = renders[(chart, "vps", "per-store", True)]
    assert middlewares(docs)["to-primary"] == {"redirectRegex": {
        "regex": "^https?://[^/]+(/.*)?$", "replacement": "https://shop.example.com${1}",
        "permanent": True}}
    store, domain = ingresses(docs)[HOST], ingresses(docs)[DOMAIN["host"]]
    assert "to-primary" in annotations(store)["traefik.ingress.kubernetes.io/router.middlewares"]
    assert "to-primary" not in annotations(domain)[
        "traefik.ingress.kubernetes.io/router.middlewares"]


@pytest.mark.parametrize("chart", CHARTS)
def test_hsts_is_an_option(tmp_path, chart):
    values = generated("per-store")
    values["ingress"]["hsts"] = {"enabled": True, "maxAge": 63072000, "includeSubdomains": True}
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    docs = render(chart, [DEPLOY_VALUES / f"{chart}-vps.yaml", path])
    assert middlewares(docs)["hsts"] == {"headers": {"stsSeconds": 63072000,
                                                     "stsIncludeSubdomains": True}}
    assert "hsts@kubernetescrd" in annotations(ingresses(docs)[HOST])[
        "traefik.ingress.kubernetes.io/router.middlewares"]


@pytest.mark.parametrize("chart", CHARTS)
def test_with_ingress_nginx_the_redirects_are_annotations(tmp_path, chart):
    values = generated("per-store", domain=True, primary=True)
    values["ingress"]["controller"] = "nginx"
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    docs = render(chart, [DEPLOY_VALUES / f"{chart}-vps.yaml", path])
    assert of_kind(docs, "Middleware") == []
    store, domain = ingresses(docs)[HOST], ingresses(docs)[DOMAIN["host"]]
    assert annotations(store)["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    assert annotations(store)["nginx.ingress.kubernetes.io/permanent-redirect"] == (
        "https://shop.example.com$request_uri")
    assert "nginx.ingress.kubernetes.io/permanent-redirect" not in annotations(domain)


def test_wordpress_lives_at_the_primary_domain(renders):
    docs = renders[("woocommerce", "vps", "per-store", True)]
    [job] = of_kind(docs, "Job")
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0][
        "env"]}
    assert env["STORE_URL"] == "https://shop.example.com"
    [deployment] = of_kind(docs, "Deployment")
    probe = " ".join(deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"][
        "exec"]["command"])
    assert "Host: shop.example.com" in probe


def test_medusa_moves_its_backend_url_and_accepts_every_host_for_cors(renders):
    docs = renders[("medusa", "vps", "per-store", True)]
    [deployment] = [d for d in of_kind(docs, "Deployment") if d["metadata"]["name"].endswith(
        "-medusa")]
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"][
        "containers"][0]["env"]}
    assert env["MEDUSA_PUBLIC_URL"] == "https://shop.example.com"
    assert env["STORE_CORS"] == env["ADMIN_CORS"] == env["AUTH_CORS"] == (
        f"https://shop.example.com,https://{HOST}")


# --- room for cert-manager's solver ------------------------------------------------


@pytest.mark.parametrize("chart", CHARTS)
@pytest.mark.parametrize("profile", PROFILES)
def test_the_quota_leaves_room_for_the_http01_solver_pod_and_its_service(renders, chart,
                                                                          profile):
    """Everything the running store may have at once: its pods, a setup and
    a cron Job, cert-manager's solver, and a backup Job (issue 12; the
    suspended CronJob templates count for nothing by themselves)."""
    docs = renders[(chart, profile, "per-store", True)]
    [quota] = of_kind(docs, "ResourceQuota")
    hard = quota["spec"]["hard"]
    cpu, memory = chartkit.store_requests(docs)
    limit_cpu, limit_memory = chartkit.store_requests(docs, "limits")
    [backup] = [spec for kind, name, _, spec in chartkit.workloads(docs)
                if kind == "CronJob" and name.endswith("-backup")]
    backup_cpu, backup_memory = chartkit.pod_requests(backup)
    backup_limit_cpu, backup_limit_memory = chartkit.pod_requests(backup, "limits")
    assert chartkit.parse_cpu(hard["requests.cpu"]) >= cpu + SOLVER_REQUESTS[0] + backup_cpu
    assert chartkit.parse_memory(hard["requests.memory"]) >= (
        memory + SOLVER_REQUESTS[1] + backup_memory)
    assert chartkit.parse_cpu(hard["limits.cpu"]) >= (
        limit_cpu + SOLVER_LIMITS[0] + backup_limit_cpu)
    assert chartkit.parse_memory(hard["limits.memory"]) >= (
        limit_memory + SOLVER_LIMITS[1] + backup_limit_memory)
    pods = sum(n for _, _, n, _ in chartkit.workloads(docs))
    assert int(hard["pods"]) >= pods + 2
    if "services" in hard:
        assert int(hard["services"]) >= len(of_kind(docs, "Service")) + 1
    # The solver's Service is refused as a NodePort where the quota allows
    # none: the issuer must ask for ClusterIP (the runbook's do).
    if hard.get("services.nodeports") == "0":
        assert runbook_issuers(), "the runbook shows no ClusterIssuer"


def runbook_issuers() -> list[dict]:
    blocks = re.findall(r"```(?:sh|yaml)\n(.*?)```", RUNBOOK.read_text(), re.S)
    issuers = []
    for block in blocks:
        for part in re.split(r"<<'EOF'\n|\nEOF", block):
            try:
                docs = list(yaml.safe_load_all(part))
            except yaml.YAMLError:
                continue
            issuers += [d for d in docs if isinstance(d, dict)
                        and d.get("kind") == "ClusterIssuer"]
    return issuers


def test_every_http01_issuer_of_the_runbook_gives_its_solver_a_cluster_ip_service():
    issuers = runbook_issuers()
    http01 = [s["http01"] for i in issuers for s in i["spec"]["acme"]["solvers"]
              if "http01" in s]
    assert http01, "the runbook shows no HTTP-01 issuer"
    for solver in http01:
        assert solver["ingress"]["serviceType"] == "ClusterIP", solver


def test_the_runbook_shows_a_dns01_issuer_for_the_wildcard():
    dns01 = [s for i in runbook_issuers() for s in i["spec"]["acme"]["solvers"] if "dns01" in s]
    assert dns01


# --- network flows ---------------------------------------------------------------

INGRESS_CONTROLLER = Pod("ingress-controller", "kube-system",
                         {"app.kubernetes.io/name": "traefik"}, {"web": 8000})
DNS = Pod("coredns", "kube-system", {"k8s-app": "kube-dns"}, {"dns": 53})
SOLVER = Pod("acme-solver", NAMESPACE, {
    "acme.cert-manager.io/http01-solver": "true",
    "acme.cert-manager.io/http-domain": "1234567890",
    "acme.cert-manager.io/http-token": "0987654321",
}, {"http": 8089})
OTHER_STORE = Pod("other-store", "store-other", {"app.kubernetes.io/name": "woocommerce",
                                                 "app.kubernetes.io/component": "wordpress"})
STRANGER = Pod("stranger", "default", {"app": "anything"})
INTERNET = Address("internet", "93.184.216.34")
API_SERVER = Address("api-server", "10.43.0.1")
PORTS = [(53, "UDP"), (53, "TCP")] + [(p, "TCP") for p in (80, 443, 3306, 5432, 6379, 8080,
                                                             8089, 9000)]
NAMESPACES = {"kube-system": {}, NAMESPACE: {}, "store-other": {}, "default": {}}


def network(docs) -> tuple[Network, list[Pod]]:
    store_pods = [*pods_of(docs, NAMESPACE), SOLVER]
    return Network(of_kind(docs, "NetworkPolicy"), NAMESPACE, NAMESPACES), store_pods


def flows(docs) -> set:
    net, store_pods = network(docs)
    everyone = [*store_pods, INGRESS_CONTROLLER, DNS, OTHER_STORE, STRANGER]
    return net.flows(everyone, [*everyone, INTERNET, API_SERVER], PORTS)


def app_pod(chart: str) -> str:
    return "wordpress" if chart == "woocommerce" else "server"


@pytest.mark.parametrize("chart", CHARTS)
@pytest.mark.parametrize("profile", PROFILES)
def test_per_store_mode_opens_the_solver_to_the_ingress_controller_and_nothing_else(
        renders, chart, profile):
    off = flows(renders[(chart, profile, "off", False)])
    per_store = flows(renders[(chart, profile, "per-store", False)])
    assert per_store - off == {("ingress-controller", "acme-solver", 8089, "TCP")}
    assert off - per_store == set()


@pytest.mark.parametrize("chart", CHARTS)
@pytest.mark.parametrize("profile", PROFILES)
def test_wildcard_mode_opens_nothing_until_a_custom_domain_needs_http01(renders, chart,
                                                                        profile):
    off = flows(renders[(chart, profile, "off", False)])
    assert flows(renders[(chart, profile, "wildcard", False)]) == off
    with_domain = flows(renders[(chart, profile, "wildcard", True)])
    assert with_domain - off == {("ingress-controller", "acme-solver", 8089, "TCP")}


@pytest.mark.parametrize("chart", CHARTS)
@pytest.mark.parametrize("mode", MODES)
def test_the_flows_each_store_needs_are_allowed_and_the_rest_denied(renders, chart, mode):
    docs = renders[(chart, "vps", mode, True)]
    net, pods = network(docs)
    pod = {p.name: p for p in pods}
    app = pod[app_pod(chart)]
    app_port = 8080 if chart == "woocommerce" else 9000
    database = pod["mariadb"] if chart == "woocommerce" else pod["postgresql"]
    db_port = 3306 if chart == "woocommerce" else 5432
    # Allowed: the storefront from the ingress controller, the app to its
    # database, everyone to cluster DNS.
    assert net.allows(INGRESS_CONTROLLER, app, app_port)
    assert net.allows(app, database, db_port)
    for each in pods:
        assert net.allows(each, DNS, 53, "UDP") or each is SOLVER, each.name
    # Denied: strangers, the other store, the database from outside, the
    # solver from anyone but the controller, the solver reaching out.
    for outsider in (OTHER_STORE, STRANGER):
        assert not net.allows(outsider, app, app_port)
        assert not net.allows(outsider, SOLVER, 8089)
    assert not net.allows(INGRESS_CONTROLLER, database, db_port)
    assert not net.allows(INGRESS_CONTROLLER, SOLVER, 8080)
    assert not net.allows(INGRESS_CONTROLLER, app, 8089)
    assert not net.allows(SOLVER, database, db_port)
    assert not net.allows(SOLVER, INTERNET, 443)
    assert not net.allows(app, INTERNET, 443)
    assert not net.allows(app, API_SERVER, 443)
    solver_open = net.allows(INGRESS_CONTROLLER, SOLVER, 8089)
    assert solver_open == (mode != "off")  # with a custom domain, in both TLS modes


def test_the_evaluator_can_tell_allowed_from_denied():
    """Its own check: a policy that selects nothing isolates nothing, a
    named port resolves on the destination, an ipBlock honours except."""
    policies = [
        {"kind": "NetworkPolicy", "spec": {"podSelector": {"matchLabels": {"a": "1"}},
                                           "policyTypes": ["Ingress", "Egress"],
                                           "ingress": [{"ports": [{"port": "http"}]}],
                                           "egress": [{"to": [{"ipBlock": {
                                               "cidr": "0.0.0.0/0",
                                               "except": ["10.0.0.0/8"]}}]}]}},
    ]
    net = Network(policies, "ns", {"ns": {}})
    isolated = Pod("isolated", "ns", {"a": "1"}, {"http": 8080})
    free = Pod("free", "ns", {"a": "2"})
    assert net.allows(free, isolated, 8080) and not net.allows(free, isolated, 8081)
    assert net.allows(isolated, INTERNET, 443) and not net.allows(isolated, API_SERVER, 443)
    assert not net.allows(isolated, free, 80)  # egress only to addresses outside
    assert net.allows(free, free, 1)
