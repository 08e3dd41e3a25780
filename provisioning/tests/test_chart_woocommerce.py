"""The WooCommerce engine chart, rendered offline by the real helm.

No cluster here: the chart is checked by ``helm lint --strict``, by
``helm template`` with each profile plus the values the platform generates,
against the Kubernetes schemas, and by policy checks on what it renders.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from provisioning.tests.chartkit import (
    CHARTS,
    DEPLOY_VALUES,
    K8S_VERSIONS,
    containers,
    lint,
    of_kind,
    parse_cpu,
    parse_memory,
    pod_specs,
    render,
    render_error,
    store_requests,
    validate,
)

CHART = "woocommerce"
STORE_VALUES = Path(__file__).parent / "fixtures" / "woocommerce" / "store-values.yaml"
STORE = yaml.safe_load(STORE_VALUES.read_text())
PROFILES = {
    "generated-only": (STORE_VALUES,),
    "local": (DEPLOY_VALUES / "woocommerce-local.yaml", STORE_VALUES),
    "vps": (DEPLOY_VALUES / "woocommerce-vps.yaml", STORE_VALUES),
}
TLS = {
    "ingress.tls.enabled": True,
    "ingress.tls.clusterIssuer": "letsencrypt-prod",
    "ingress.tls.secretName": "store-k3x9q2m1ab-tls",
}
CONTRACT_SECRET_KEYS = {
    "admin-username",
    "admin-email",
    "admin-password",
    "db-password",
    "db-root-password",
    "jwt-secret",
    "cookie-secret",
}
MAX_CPU_REQUESTS = 250  # millicores per store
MAX_MEMORY_REQUESTS = 512 * 2**20
EXACT_TAG = re.compile(r"^[a-z0-9./-]+:[A-Za-z0-9_.-]*\d+\.\d+\.\d+[A-Za-z0-9_.-]*$")


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    """Every rendering the tests look at, made once."""
    docs = {name: render(CHART, files) for name, files in PROFILES.items()}
    docs["vps-tls"] = render(CHART, PROFILES["vps"], TLS)
    docs["baked"] = render(CHART, PROFILES["local"], {"woocommerce.source": "baked"})
    return docs


@pytest.fixture(scope="module")
def local(rendered) -> list[dict]:
    return rendered["local"]


def only(docs: list[dict], kind: str, name_part: str = "") -> dict:
    found = [d for d in of_kind(docs, kind) if name_part in d["metadata"]["name"]]
    assert len(found) == 1, f"expected one {kind} named *{name_part}*, got {len(found)}"
    return found[0]


def workload_pod(docs: list[dict], component: str) -> dict:
    for _, spec in pod_specs(docs):
        if spec["containers"][0]["name"] == component:
            return spec
    raise AssertionError(f"no pod runs a {component} container")


# --- helm lint and Kubernetes schemas ---------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_the_chart_lints_strictly(profile):
    lint(CHART, PROFILES[profile])


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("rendering", ["generated-only", "local", "vps", "vps-tls", "baked"])
def test_every_rendered_document_is_valid_kubernetes(rendered, rendering, version):
    validate(rendered[rendering], version)


def test_it_renders_only_namespaced_objects_of_the_expected_kinds(local):
    kinds = sorted({d["kind"] for d in local})
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "Ingress",
            "Job",
            "LimitRange",
            "NetworkPolicy",
            "PersistentVolumeClaim",
            "ResourceQuota",
            "Service",
            "ServiceAccount",
            "StatefulSet",
        ]
    )
    assert all(
        "namespace" not in d["metadata"] or d["metadata"]["namespace"] == "store-test"
        for d in local
    )


# --- policies on every pod and container --------------------------------------


@pytest.mark.parametrize("rendering", ["local", "vps", "baked"])
def test_every_container_has_requests_and_limits_within_its_requests(rendered, rendering):
    for name, c in containers(rendered[rendering]):
        res = c.get("resources", {})
        for resource, parse in (("cpu", parse_cpu), ("memory", parse_memory)):
            request = parse(res["requests"][resource])
            limit = parse(res["limits"][resource])
            assert 0 < request <= limit, f"{name}: {resource} request {request} > limit {limit}"


@pytest.mark.parametrize("rendering", ["local", "vps", "baked"])
def test_every_pod_meets_pod_security_restricted(rendered, rendering):
    for owner, spec in pod_specs(rendered[rendering]):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, owner
        assert pod["runAsUser"] > 0, owner
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", owner
        assert spec["automountServiceAccountToken"] is False, owner
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), owner
        for volume in spec.get("volumes", []):
            assert set(volume) - {"name"} <= {"persistentVolumeClaim", "configMap", "emptyDir"}
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True, c["name"]
            assert sc["allowPrivilegeEscalation"] is False, c["name"]
            assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
            assert "add" not in sc["capabilities"], c["name"]
            assert not sc.get("privileged"), c["name"]
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", c["name"]
            for port in c.get("ports", []):
                assert port["containerPort"] >= 1024, f"{c['name']} needs a privileged port"


def test_the_service_account_mounts_no_token(local):
    assert only(local, "ServiceAccount")["automountServiceAccountToken"] is False


def test_wordpress_and_wp_cli_share_one_uid_so_both_can_write_the_volume(local):
    wordpress = workload_pod(local, "wordpress")["securityContext"]
    setup = workload_pod(local, "setup")["securityContext"]
    assert wordpress["runAsUser"] == setup["runAsUser"] == 33
    assert wordpress["fsGroup"] == setup["fsGroup"] == 33


@pytest.mark.parametrize("rendering", ["local", "vps", "baked"])
def test_every_image_is_official_and_pinned_to_an_exact_tag(rendered, rendering):
    for name, c in containers(rendered[rendering]):
        image = c["image"]
        assert EXACT_TAG.match(image), f"{name}: {image} is not pinned to an exact version"
        assert not image.endswith(":latest") and "bitnami" not in image, image


def test_the_default_images_are_the_official_wordpress_cli_and_mariadb(local):
    images = {c["name"]: c["image"] for _, c in containers(local)}
    assert re.match(
        r"^docker\.io/library/wordpress:\d+\.\d+\.\d+-php[\d.]+-apache$", images["wordpress"]
    )
    assert re.match(r"^docker\.io/library/wordpress:cli-\d+\.\d+\.\d+", images["setup"])
    assert re.match(r"^docker\.io/library/mariadb:\d+\.\d+\.\d+$", images["mariadb"])


def test_the_baked_source_uses_one_image_for_site_and_setup(rendered):
    images = {c["name"]: c["image"] for _, c in containers(rendered["baked"])}
    assert images["wordpress"] == images["setup"]
    assert "wordpress-woocommerce" in images["setup"]


# --- secrets -----------------------------------------------------------------------


def test_passwords_come_only_from_the_store_secret(rendered):
    for rendering in ("local", "vps-tls", "baked"):
        docs = rendered[rendering]
        assert not of_kind(docs, "Secret"), "the platform owns the store Secret"
        for name, c in containers(docs):
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if re.search("PASSWORD|SECRET", env["name"]):
                    assert ref, f"{name}: {env['name']} is not read from a Secret"
                if ref:
                    assert ref["name"] == STORE["existingSecret"]
                    assert ref["key"] in CONTRACT_SECRET_KEYS


def test_a_password_cannot_be_slipped_in_through_values():
    sentinel = "Sup3r-Secret-Sentinel-Pw"
    for key in ("mariadb.rootPassword", "wordpress.adminPassword", "store.password"):
        error = render_error(CHART, [STORE_VALUES], {key: sentinel})
        assert "not allowed" in error and key.rsplit(".", 1)[1] in error


def test_the_templates_never_generate_or_look_up_secrets():
    for template in (CHARTS / CHART / "templates").iterdir():
        source = template.read_text()
        for forbidden in ("randAlpha", "randAscii", "randNumeric", "genPrivateKey", "lookup"):
            assert forbidden not in source, f"{template.name} uses {forbidden}"


# --- fences ------------------------------------------------------------------------


def test_a_default_deny_policy_covers_every_pod_both_ways(local):
    deny = only(local, "NetworkPolicy", "default-deny")
    assert deny["spec"]["podSelector"] == {}
    assert sorted(deny["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]


def test_only_the_ingress_controller_reaches_wordpress(local):
    policy = only(local, "NetworkPolicy", "wordpress-from-ingress")
    [rule] = policy["spec"]["ingress"]
    [peer] = rule["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "kube-system"
    }
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]


def test_the_ingress_controller_namespace_is_configurable():
    docs = render(
        CHART,
        [STORE_VALUES],
        {
            "networkPolicy.ingressController.namespaceSelector.matchLabels.kubernetes\\.io/"
            "metadata\\.name": "ingress-nginx",
        },
    )
    [peer] = only(docs, "NetworkPolicy", "wordpress-from-ingress")["spec"]["ingress"][0]["from"]
    assert peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == (
        "ingress-nginx"
    )


def test_only_wordpress_and_the_setup_job_reach_the_database(local):
    policy = only(local, "NetworkPolicy", "mariadb-from-app")
    [rule] = policy["spec"]["ingress"]
    [expression] = rule["from"][0]["podSelector"]["matchExpressions"]
    assert sorted(expression["values"]) == ["setup", "wordpress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 3306}]


def test_dns_is_allowed_to_kube_dns_only(local):
    [rule] = only(local, "NetworkPolicy", "allow-dns")["spec"]["egress"]
    assert rule["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert {p["port"] for p in rule["ports"]} == {53}


def test_outbound_https_is_open_for_the_setup_job_only_when_it_downloads(rendered):
    policy = only(rendered["local"], "NetworkPolicy", "setup-https-egress")
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "setup"
    [rule] = policy["spec"]["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 443}]
    assert "10.0.0.0/8" in rule["to"][0]["ipBlock"]["except"]
    assert not [
        p for p in of_kind(rendered["baked"], "NetworkPolicy") if "https" in p["metadata"]["name"]
    ]


@pytest.mark.parametrize("rendering", ["local", "vps"])
def test_quota_and_limit_range_hold_the_whole_store(rendered, rendering):
    docs = rendered[rendering]
    hard = only(docs, "ResourceQuota")["spec"]["hard"]
    cpu, memory = store_requests(docs)
    assert parse_cpu(hard["requests.cpu"]) >= cpu
    assert parse_memory(hard["requests.memory"]) >= memory
    limits_cpu = sum(parse_cpu(c["resources"]["limits"]["cpu"]) for _, c in containers(docs))
    limits_memory = sum(
        parse_memory(c["resources"]["limits"]["memory"]) for _, c in containers(docs)
    )
    assert parse_cpu(hard["limits.cpu"]) >= limits_cpu
    assert parse_memory(hard["limits.memory"]) >= limits_memory
    assert int(hard["persistentvolumeclaims"]) >= 2 and int(hard["pods"]) >= 3
    storage = sum(
        parse_memory(p["spec"]["resources"]["requests"]["storage"])
        for p in of_kind(docs, "PersistentVolumeClaim")
    )
    storage += parse_memory(
        only(docs, "StatefulSet")["spec"]["volumeClaimTemplates"][0]["spec"]["resources"][
            "requests"
        ]["storage"]
    )
    assert parse_memory(hard["requests.storage"]) >= storage

    [limits] = only(docs, "LimitRange")["spec"]["limits"]
    for name, c in containers(docs):
        assert parse_cpu(c["resources"]["limits"]["cpu"]) <= parse_cpu(limits["max"]["cpu"]), name
        assert parse_memory(c["resources"]["limits"]["memory"]) <= parse_memory(
            limits["max"]["memory"]
        ), name
    assert {"default", "defaultRequest", "max"} <= set(limits)


@pytest.mark.parametrize("rendering", ["generated-only", "local", "vps"])
def test_a_store_requests_at_most_250m_cpu_and_512mi_memory(rendered, rendering):
    cpu, memory = store_requests(rendered[rendering])
    assert cpu <= MAX_CPU_REQUESTS, f"{cpu}m CPU requested"
    assert memory <= MAX_MEMORY_REQUESTS, f"{memory / 2**20:.0f}Mi memory requested"


# --- ingress -----------------------------------------------------------------------


def test_the_ingress_serves_the_store_host_with_the_given_class(local):
    ingress = only(local, "Ingress")
    assert [r["host"] for r in ingress["spec"]["rules"]] == [STORE["store"]["host"]]
    assert ingress["spec"]["ingressClassName"] == "traefik"
    assert "tls" not in ingress["spec"]
    assert "cert-manager.io/cluster-issuer" not in (ingress["metadata"].get("annotations") or {})


def test_an_empty_class_name_leaves_the_cluster_default():
    ingress = only(render(CHART, [STORE_VALUES], {"ingress.className": ""}), "Ingress")
    assert "ingressClassName" not in ingress["spec"]


def test_tls_asks_cert_manager_for_the_store_host(rendered):
    ingress = only(rendered["vps-tls"], "Ingress")
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == (
        "letsencrypt-prod"
    )
    assert ingress["spec"]["tls"] == [
        {"hosts": [STORE["store"]["host"]], "secretName": "store-k3x9q2m1ab-tls"}
    ]


def test_the_setup_job_gets_the_store_url_with_its_scheme(local):
    def setup_env(docs):
        return {
            e["name"]: e.get("value") for e in workload_pod(docs, "setup")["containers"][0]["env"]
        }

    env = setup_env(local)
    assert env["STORE_URL"] == "http://" + STORE["store"]["host"]
    assert env["STORE_TITLE"] == STORE["store"]["name"]
    https = setup_env(render(CHART, [STORE_VALUES], {"store.scheme": "https"}))
    assert https["STORE_URL"] == "https://" + STORE["store"]["host"]


# --- workloads ---------------------------------------------------------------------


def test_the_setup_job_is_new_per_revision_and_runs_next_to_wordpress(local):
    job = only(local, "Job")
    assert job["metadata"]["name"].endswith("-setup-r1")
    assert "helm.sh/hook" not in (job["metadata"].get("annotations") or {})
    term = job["spec"]["template"]["spec"]["affinity"]["podAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "wordpress"
    volumes = job["spec"]["template"]["spec"]["volumes"]
    wordpress = workload_pod(local, "wordpress")["volumes"]
    assert [v for v in volumes if "persistentVolumeClaim" in v] == [
        v for v in wordpress if "persistentVolumeClaim" in v
    ]


def test_the_setup_script_shipped_is_the_one_in_files(local):
    config = only(local, "ConfigMap")
    script = (CHARTS / CHART / "files" / "setup.sh").read_text()
    assert config["data"]["setup.sh"].strip() == script.strip()


def test_wordpress_listens_on_8080_and_replaces_its_pod_before_the_volume_moves(local):
    deployment = only(local, "Deployment")
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"][0]["containerPort"] == 8080
    assert "Listen 8080" in only(local, "ConfigMap")["data"]["ports.conf"]


def test_wordpress_is_ready_only_when_the_storefront_answers_200(local):
    container = workload_pod(local, "wordpress")["containers"][0]
    command = " ".join(container["readinessProbe"]["exec"]["command"])
    assert f"Host: {STORE['store']['host']}" in command and "= 200" in command
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
    assert container["livenessProbe"]["failureThreshold"] >= 3


def test_mariadb_is_a_statefulset_whose_volume_goes_with_it(local):
    statefulset = only(local, "StatefulSet")
    assert statefulset["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    assert "healthcheck.sh" in container["readinessProbe"]["exec"]["command"]
    assert "performance_schema = OFF" in only(local, "ConfigMap")["data"]["storeplatform.cnf"]


# --- values schema -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"store.host": "Not_A_Host"}, "/store/host"),
        ({"store.host": "shop..example.com"}, "/store/host"),
        ({"store.scheme": "ftp"}, "/store/scheme"),
        ({"store.id": "UPPER"}, "/store/id"),
        ({"store.name": "ab"}, "/store/name"),
        ({"existingSecret": ""}, "/existingSecret"),
        ({"persistence.wordpress.size": "-1Gi"}, "/persistence/wordpress/size"),
        ({"persistence.mariadb.size": "lots"}, "/persistence/mariadb/size"),
        ({"wordpress.resources.requests.cpu": "-100m"}, "/wordpress/resources/requests/cpu"),
        ({"mariadb.resources.limits.memory": "0Mi"}, "/mariadb/resources/limits/memory"),
        ({"quota.pods": -1}, "/quota/pods"),
        ({"store.color": "red"}, "'color' not allowed"),
        ({"ingress.annotations.foo": "bar"}, "'annotations' not allowed"),
        ({"ingress.tls.enabled": True}, "/ingress/tls/secretName"),
        ({"woocommerce.source": "git"}, "/woocommerce/source"),
        ({"images.mariadb.tag": "latest"}, "/images/mariadb/tag"),
        ({"replicas": 2}, "'replicas' not allowed"),
    ],
)
def test_the_schema_rejects_a_bad_value_naming_it(values, named):
    error = render_error(CHART, [STORE_VALUES], values)
    assert named in error, error


@pytest.mark.parametrize("missing", ["host", "id", "name", "scheme"])
def test_the_schema_rejects_a_store_without_its_required_fields(tmp_path, missing):
    values = yaml.safe_load(STORE_VALUES.read_text())
    del values["store"][missing]
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    error = render_error(CHART, [path])
    assert "/store" in error and f"'{missing}'" in error, error


def test_the_schema_rejects_a_release_without_existing_secret(tmp_path):
    values = yaml.safe_load(STORE_VALUES.read_text())
    del values["existingSecret"]
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    assert "'existingSecret'" in render_error(CHART, [path])


def test_profiles_do_not_set_what_the_platform_generates():
    for profile in ("local", "vps"):
        values = yaml.safe_load((DEPLOY_VALUES / f"woocommerce-{profile}.yaml").read_text())
        assert "store" not in values and "existingSecret" not in values


def test_the_baked_image_build_matches_the_chart_versions():
    values = yaml.safe_load((CHARTS / CHART / "values.yaml").read_text())
    dockerfile = (CHARTS.parent / "images" / "wordpress-woocommerce" / "Dockerfile").read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile, re.MULTILINE))
    wordpress_tag = values["images"]["wordpress"]["tag"]
    assert args["WORDPRESS_IMAGE"].endswith(":" + wordpress_tag)
    assert args["WOOCOMMERCE_VERSION"] == values["woocommerce"]["version"]
    assert args["WP_CLI_VERSION"] in values["images"]["cli"]["tag"]
    wordpress_version = wordpress_tag.split("-")[0]
    assert values["images"]["baked"]["tag"] == (
        f"{wordpress_version}-wc{values['woocommerce']['version']}"
    )
