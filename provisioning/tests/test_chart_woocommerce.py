"""The WooCommerce engine chart, rendered offline by the real helm.

No cluster here: the chart is checked by ``helm lint --strict``, by
``helm template`` with each profile plus the values the platform generates,
against the Kubernetes schemas, and by policy checks on what it renders.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from provisioning.tests import chartkit
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
SMTP_RELAY = {
    "smtp.host": "smtp.relay.example.net",
    "smtp.port": 2525,
    "smtp.username": "stores@example.net",
    "smtp.from": "shops@example.net",
    "smtp.tls": "starttls",
    "smtp.existingSecret": "store-smtp",
}
MU_PLUGIN = CHARTS / CHART / "files" / "mu-plugins" / "storeplatform-mail.php"
MAX_CPU_REQUESTS = 250  # millicores per store
MAX_MEMORY_REQUESTS = 512 * 2**20
EXACT_TAG = re.compile(r"^[a-z0-9./-]+:[A-Za-z0-9_.-]*\d+\.\d+\.\d+[A-Za-z0-9_.-]*$")


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    """Every rendering the tests look at, made once."""
    docs = {name: render(CHART, files) for name, files in PROFILES.items()}
    docs["vps-tls"] = render(CHART, PROFILES["vps"], TLS)
    docs["baked"] = render(CHART, PROFILES["local"], {"woocommerce.source": "baked"})
    docs["smtp"] = render(CHART, PROFILES["vps"], SMTP_RELAY)
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
@pytest.mark.parametrize(
    "rendering", ["generated-only", "local", "vps", "vps-tls", "baked", "smtp"]
)
def test_every_rendered_document_is_valid_kubernetes(rendered, rendering, version):
    validate(rendered[rendering], version)


def test_it_renders_only_namespaced_objects_of_the_expected_kinds(local):
    kinds = sorted({d["kind"] for d in local})
    assert kinds == sorted(
        [
            "ConfigMap",
            "CronJob",
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
            assert set(volume) - {"name"} <= {"persistentVolumeClaim", "configMap", "emptyDir",
                                              "secret"}
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
    contexts = [workload_pod(local, c)["securityContext"] for c in ("wordpress", "setup", "cron")]
    assert {c["runAsUser"] for c in contexts} == {c["fsGroup"] for c in contexts} == {33}


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
    assert images["cron"] == images["setup"]
    assert re.match(r"^docker\.io/library/mariadb:\d+\.\d+\.\d+$", images["mariadb"])


def test_the_baked_source_uses_one_image_for_site_and_setup(rendered):
    images = {c["name"]: c["image"] for _, c in containers(rendered["baked"])}
    assert images["wordpress"] == images["setup"] == images["cron"]
    assert "wordpress-woocommerce" in images["setup"]


# --- secrets -----------------------------------------------------------------------


def test_passwords_come_only_from_the_platforms_secrets(rendered):
    allowed = {(STORE["existingSecret"], key) for key in CONTRACT_SECRET_KEYS}
    allowed.add((SMTP_RELAY["smtp.existingSecret"], "password"))
    allowed |= {("store-backup-s3", "access-key"), ("store-backup-s3", "secret-key")}
    for rendering in ("local", "vps-tls", "baked", "smtp"):
        docs = rendered[rendering]
        assert not of_kind(docs, "Secret"), "the platform owns the store's Secrets"
        for owner, spec in pod_specs(docs):
            for c in spec.get("initContainers", []) + spec["containers"]:
                name = f"{owner}/{c['name']}"
                for env in c.get("env", []):
                    ref = env.get("valueFrom", {}).get("secretKeyRef")
                    if env["name"].endswith("_FILE"):
                        # A file: it must be a key of a Secret mounted there.
                        ref = secret_file(spec, c, env["value"])
                    if re.search("PASSWORD|SECRET", env["name"]):
                        assert ref, f"{name}: {env['name']} is not read from a Secret"
                    if ref:
                        assert (ref["name"], ref["key"]) in allowed, f"{name}: {ref}"


def secret_file(spec: dict, container: dict, path: str) -> dict | None:
    """{"name", "key"} of the Secret key a container sees at ``path``, if any."""
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        secret = volumes[mount["name"]].get("secret")
        if secret and path.startswith(mount["mountPath"] + "/"):
            relative = path[len(mount["mountPath"]) + 1:]
            for item in secret.get("items", []):
                if item["path"] == relative:
                    return {"name": secret["secretName"], "key": item["key"]}
    return None


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


def test_only_wordpress_the_wp_cli_pods_and_the_backup_jobs_reach_the_database(local):
    policy = only(local, "NetworkPolicy", "mariadb-from-app")
    [rule] = policy["spec"]["ingress"]
    [expression] = rule["from"][0]["podSelector"]["matchExpressions"]
    assert sorted(expression["values"]) == ["backup", "cron", "setup", "wordpress"]
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


@pytest.mark.parametrize("rendering", ["generated-only", "local", "vps"])
def test_quota_and_limit_range_hold_the_whole_store(rendered, rendering):
    docs = rendered[rendering]
    hard = only(docs, "ResourceQuota")["spec"]["hard"]
    cpu, memory = store_requests(docs)
    assert parse_cpu(hard["requests.cpu"]) >= cpu
    assert parse_memory(hard["requests.memory"]) >= memory
    # Every container at once, but of the backup and restore templates only
    # one pod: a restore runs with the site stopped, a backup next to it.
    running = [c for name, c in containers(docs) if "-restore/" not in name]
    limits_cpu = sum(parse_cpu(c["resources"]["limits"]["cpu"]) for c in running)
    limits_memory = sum(parse_memory(c["resources"]["limits"]["memory"]) for c in running)
    assert parse_cpu(hard["limits.cpu"]) >= limits_cpu
    assert parse_memory(hard["limits.memory"]) >= limits_memory
    # WordPress, MariaDB, a setup Job pod, a cron Job pod and a backup Job
    # pod, all at once.
    assert int(hard["persistentvolumeclaims"]) >= 2 and int(hard["pods"]) >= 5
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


def test_the_scripts_and_plugin_shipped_are_the_ones_in_files(local):
    wpcli = only(local, "ConfigMap", "wpcli")["data"]
    wordpress = only(local, "ConfigMap", "-wordpress")["data"]
    files = CHARTS / CHART / "files"
    assert wpcli["setup.sh"].strip() == (files / "setup.sh").read_text().strip()
    assert wpcli["cron.sh"].strip() == (files / "cron.sh").read_text().strip()
    assert wordpress["storeplatform-mail.php"].strip() == (MU_PLUGIN.read_text().strip())


def test_wordpress_listens_on_8080_and_replaces_its_pod_before_the_volume_moves(local):
    deployment = only(local, "Deployment")
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"][0]["containerPort"] == 8080
    assert "Listen 8080" in only(local, "ConfigMap", "-wordpress")["data"]["ports.conf"]


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
    assert "performance_schema = OFF" in only(local, "ConfigMap", "mariadb")["data"][
        "storeplatform.cnf"
    ]


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
        assert not {"store", "existingSecret", "smtp"} & set(values)


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


# --- background jobs (CronJob) ---------------------------------------------------


def cron_job(docs: list[dict]) -> dict:
    return only(docs, "CronJob", "-cron")


@pytest.mark.parametrize("rendering", ["local", "vps", "baked"])
def test_a_cronjob_runs_the_background_jobs_every_minute_one_run_at_a_time(rendered, rendering):
    cron = cron_job(rendered[rendering])["spec"]
    assert cron["schedule"] == "* * * * *"
    assert cron["concurrencyPolicy"] == "Forbid"
    assert 10 <= cron["startingDeadlineSeconds"] < 60
    assert 0 < cron["successfulJobsHistoryLimit"] <= 3
    assert 0 < cron["failedJobsHistoryLimit"] <= 3
    job = cron["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    assert 60 <= job["activeDeadlineSeconds"] <= 600
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    [container] = pod["containers"]
    assert container["command"] == ["sh", "/opt/storeplatform/scripts/cron.sh"]


def test_the_cron_pod_mounts_the_wordpress_volume_next_to_wordpress_like_the_setup_job(local):
    cron = workload_pod(local, "cron")
    setup = workload_pod(local, "setup")
    assert cron["affinity"] == setup["affinity"]
    claims = [v for v in cron["volumes"] if "persistentVolumeClaim" in v]
    assert claims == [v for v in workload_pod(local, "wordpress")["volumes"]
                      if "persistentVolumeClaim" in v]
    mounts = {m["mountPath"]: m for m in cron["containers"][0]["volumeMounts"]}
    assert mounts["/var/www/html"]["name"] == claims[0]["name"]


def test_wp_cron_is_off_on_page_loads_in_the_site_and_in_the_cron_jobs_wordpress(local):
    for component in ("wordpress", "cron"):
        env = {e["name"]: e.get("value") for e in
               workload_pod(local, component)["containers"][0]["env"]}
        assert "define('DISABLE_WP_CRON', true);" in env["WORDPRESS_CONFIG_EXTRA"], component


def test_the_cron_can_be_turned_off():
    docs = render(CHART, [STORE_VALUES], {"cron.enabled": False})
    assert [c["metadata"]["name"] for c in of_kind(docs, "CronJob")] == [
        "store-test-backup", "store-test-restore"]


def _matches(selector: dict, labels: dict) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions) against labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get(
            "values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def pod_labels(docs: list[dict], component: str) -> dict:
    for doc in docs:
        spec = doc.get("spec") or {}
        template = (spec.get("jobTemplate") or {}).get("spec", spec).get("template")
        if template and template["metadata"]["labels"].get(
                "app.kubernetes.io/component") == component:
            return template["metadata"]["labels"]
    raise AssertionError(f"no pod template for {component}")


def egress_of(docs: list[dict], labels: dict) -> list[dict]:
    """Every egress rule of every policy that selects a pod with these labels.
    With default-deny in place, this is all the pod may reach."""
    rules = []
    for policy in of_kind(docs, "NetworkPolicy"):
        spec = policy["spec"]
        if "Egress" in spec["policyTypes"] and _matches(spec["podSelector"], labels):
            rules += spec.get("egress", [])
    return rules


def ingress_allows(docs: list[dict], target: dict, source: dict, port: int) -> bool:
    for policy in of_kind(docs, "NetworkPolicy"):
        spec = policy["spec"]
        if "Ingress" not in spec["policyTypes"] or not _matches(spec["podSelector"], target):
            continue
        for rule in spec.get("ingress", []):
            ports = {p["port"] for p in rule.get("ports", [])}
            peers = [p for p in rule.get("from", []) if "podSelector" in p
                     and "namespaceSelector" not in p and _matches(p["podSelector"], source)]
            if peers and port in ports:
                return True
    return False


@pytest.mark.parametrize("rendering", ["local", "baked"])
def test_the_cron_pod_reaches_mariadb_and_dns_and_nothing_else(rendered, rendering):
    docs = rendered[rendering]
    cron = pod_labels(docs, "cron")
    mariadb = pod_labels(docs, "mariadb")
    destinations = []
    for rule in egress_of(docs, cron):
        for peer in rule["to"]:
            ports = sorted((p["protocol"], p["port"]) for p in rule["ports"])
            if "ipBlock" in peer:
                destinations.append(("ipBlock", ports))
            elif _matches(peer["podSelector"], mariadb) and "namespaceSelector" not in peer:
                destinations.append(("mariadb", ports))
            else:
                assert peer["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
                destinations.append(("dns", ports))
    assert sorted(destinations) == [
        ("dns", [("TCP", 53), ("UDP", 53)]),
        ("mariadb", [("TCP", 3306)]),
    ]
    assert ingress_allows(docs, mariadb, cron, 3306)
    assert not ingress_allows(docs, pod_labels(docs, "wordpress"), cron, 8080)


# --- e-mail ------------------------------------------------------------------------


def container_env(docs: list[dict], component: str) -> dict:
    return {e["name"]: e for e in workload_pod(docs, component)["containers"][0]["env"]}


def test_without_a_relay_the_site_logs_mail_and_no_smtp_port_is_open(local):
    env = container_env(local, "wordpress")
    assert env["STORE_SMTP_HOST"]["value"] == ""
    assert "STORE_SMTP_PASSWORD" not in env
    assert env["STORE_SMTP_FROM"]["value"] == "shop@" + STORE["store"]["host"]
    assert not [p for p in of_kind(local, "NetworkPolicy") if "smtp" in p["metadata"]["name"]]


def test_the_relay_reaches_the_site_and_the_cron_jobs_with_its_password_from_a_secret(rendered):
    docs = rendered["smtp"]
    for component in ("wordpress", "cron"):
        env = container_env(docs, component)
        assert env["STORE_SMTP_HOST"]["value"] == "smtp.relay.example.net"
        assert env["STORE_SMTP_PORT"]["value"] == "2525"
        assert env["STORE_SMTP_USER"]["value"] == "stores@example.net"
        assert env["STORE_SMTP_FROM"]["value"] == "shops@example.net"
        assert env["STORE_SMTP_TLS"]["value"] == "starttls"
        assert env["STORE_SMTP_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "store-smtp", "key": "password"}
    assert "STORE_SMTP_PASSWORD" not in container_env(docs, "setup")


def test_the_egress_policy_opens_only_the_relays_port_to_public_addresses(rendered):
    docs = rendered["smtp"]
    policy = only(docs, "NetworkPolicy", "smtp-egress")
    [rule] = policy["spec"]["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 2525}]
    [peer] = rule["to"]
    assert peer["ipBlock"]["cidr"] == "0.0.0.0/0"
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(
        peer["ipBlock"]["except"])
    selected = {c for c in ("wordpress", "cron", "setup", "mariadb")
                if _matches(policy["spec"]["podSelector"], pod_labels(docs, c))}
    assert selected == {"wordpress", "cron"}


def test_the_mail_plugin_is_mounted_read_only_outside_the_wordpress_volume(local):
    for component in ("wordpress", "cron"):
        pod = workload_pod(local, component)
        container = pod["containers"][0]
        [mount] = [m for m in container["volumeMounts"] if m["name"] == "mu-plugins"]
        assert mount["readOnly"] is True
        # A mount point inside the volume would be created root-owned by the
        # runtime and break WordPress's first-start copy (see wordpress.yaml).
        assert not mount["mountPath"].startswith("/var/www/html")
        extra = container_env(local, component)["WORDPRESS_CONFIG_EXTRA"]["value"]
        assert f"define('WPMU_PLUGIN_DIR', '{mount['mountPath']}');" in extra
        [volume] = [v for v in pod["volumes"] if v["name"] == "mu-plugins"]
        assert volume["configMap"]["items"] == [
            {"key": "storeplatform-mail.php", "path": "storeplatform-mail.php"}]


def test_the_mail_plugin_reads_exactly_the_settings_the_chart_passes(rendered):
    source = MU_PLUGIN.read_text()
    read = set(re.findall(r"storeplatform_smtp_setting\(\s*'([A-Z]+)'", source))
    passed = {name.removeprefix("STORE_SMTP_")
              for name in container_env(rendered["smtp"], "wordpress")
              if name.startswith("STORE_SMTP_")}
    assert read == passed == {"HOST", "PORT", "TLS", "USER", "PASSWORD", "FROM"}
    for hook in ("phpmailer_init", "pre_wp_mail", "wp_mail_failed"):
        assert f"'{hook}'" in source


def test_the_mail_plugin_is_valid_php():
    """A syntax check with tree-sitter's PHP grammar: PHP itself is not on
    these machines (its behaviour is not tested here, see the README)."""
    import tree_sitter
    import tree_sitter_php

    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_php.language_php()))
    tree = parser.parse(MU_PLUGIN.read_bytes())
    broken = []

    def walk(node):
        if node.is_error or node.is_missing:
            broken.append(f"line {node.start_point[0] + 1}: {node.type}")
        for child in node.children:
            walk(child)

    walk(tree.root_node)
    assert broken == []
    # The grammar does parse errors: the same file cut short is reported.
    assert parser.parse(MU_PLUGIN.read_bytes()[:-40]).root_node.has_error


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"smtp.host": "smtp relay"}, "/smtp/host"),
        ({"smtp.port": 0}, "/smtp/port"),
        ({"smtp.tls": "ssl"}, "/smtp/tls"),
        ({"smtp.from": "not an address"}, "/smtp/from"),
        ({"smtp.existingSecret": "Store_SMTP"}, "/smtp/existingSecret"),
        ({"smtp.password": "hunter2"}, "'password' not allowed"),
    ],
)
def test_the_schema_rejects_a_bad_relay_naming_it(values, named):
    error = render_error(CHART, [STORE_VALUES], values)
    assert named in error, error


# --- memory: Apache workers and WP-CLI fit their containers -----------------------

APACHE_ALLOWANCE = 64 * 2**20  # Apache's parent, its modules and each child's own data
CLI_ALLOWANCE = 64 * 2**20  # PHP itself and WP-CLI's phar around the memory limit


def php_bytes(value: str) -> int:
    """PHP's shorthand: K, M, G are powers of 1024."""
    return int(value[:-1]) * {"K": 2**10, "M": 2**20, "G": 2**30}[value[-1]]


def ini(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


@pytest.mark.parametrize("rendering", ["generated-only", "local", "vps"])
def test_every_apache_worker_can_use_all_its_php_memory_within_the_container_limit(
        rendered, rendering):
    docs = rendered[rendering]
    data = only(docs, "ConfigMap", "-wordpress")["data"]
    php = ini(data["zz-storeplatform.ini"])
    workers = int(re.search(r"MaxRequestWorkers\s+(\d+)", data["mpm_prefork.conf"])[1])
    memory_limit = php_bytes(php["memory_limit"])
    opcache = int(php["opcache.memory_consumption"]) * 2**20
    limit = parse_memory(workload_pod(docs, "wordpress")["containers"][0]["resources"]["limits"][
        "memory"])
    needed = workers * memory_limit + opcache + APACHE_ALLOWANCE
    assert needed <= limit, (
        f"{workers} workers x {php['memory_limit']} + {opcache // 2**20}M opcache + 64M "
        f"= {needed // 2**20}Mi > limit {limit // 2**20}Mi")
    # Neither WordPress's admin pages nor a plugin may raise PHP's limit past it.
    assert f"php_admin_value memory_limit {php['memory_limit']}" in data["000-default.conf"]
    extra = container_env(docs, "wordpress")["WORDPRESS_CONFIG_EXTRA"]["value"]
    assert f"define('WP_MAX_MEMORY_LIMIT', '{php['memory_limit']}');" in extra


@pytest.mark.parametrize("rendering", ["generated-only", "local", "vps", "baked"])
def test_wp_cli_gets_the_php_memory_woocommerce_needs_within_its_container(rendered, rendering):
    docs = rendered[rendering]
    memory_limit = php_bytes(ini(only(docs, "ConfigMap", "wpcli")["data"][
        "zz-storeplatform-cli.ini"])["memory_limit"])
    assert memory_limit >= 256 * 2**20, "WooCommerce's installer needs at least 256M"
    for component in ("setup", "cron"):
        pod = workload_pod(docs, component)
        container = pod["containers"][0]
        # wordpress:cli runs the WP-CLI phar directly, which ignores
        # WP_CLI_PHP_ARGS; PHP reads conf.d instead.
        [mount] = [m for m in container["volumeMounts"] if m.get("subPath") ==
                   "zz-storeplatform-cli.ini"]
        assert mount["mountPath"] == "/usr/local/etc/php/conf.d/zz-storeplatform-cli.ini"
        limit = parse_memory(container["resources"]["limits"]["memory"])
        assert memory_limit + CLI_ALLOWANCE <= limit, component


# --- restarts: each pod's checksum covers only its own configuration ---------------


def pod_templates(docs: list[dict]) -> dict[str, dict]:
    return {kind: only(docs, kind)["spec"]["template"] for kind in ("Deployment", "StatefulSet")}


@pytest.fixture
def chart_copy(tmp_path) -> Path:
    copy = tmp_path / CHART
    shutil.copytree(CHARTS / CHART, copy)
    return copy


def test_a_new_setup_script_or_title_restarts_neither_wordpress_nor_mariadb(chart_copy):
    before = render(str(chart_copy), [STORE_VALUES])
    with (chart_copy / "files" / "setup.sh").open("a") as script:
        script.write("# a change to the setup script\n")
    after = render(str(chart_copy), [STORE_VALUES], {"store.name": "Acme Shop Renamed"})

    assert pod_templates(after) == pod_templates(before)
    # What did change reaches the next setup Job (a new Job every revision).
    wpcli = only(after, "ConfigMap", "wpcli")["data"]
    assert wpcli["setup.sh"].endswith("# a change to the setup script\n")
    assert wpcli["store-name"] == "Acme Shop Renamed"


def test_a_php_change_restarts_wordpress_only_and_a_database_change_mariadb_only():
    base = pod_templates(render(CHART, [STORE_VALUES]))
    php = pod_templates(render(CHART, [STORE_VALUES], {"wordpress.php.opcacheMemory": 96}))
    database = pod_templates(render(CHART, [STORE_VALUES], {"mariadb.maxConnections": 50}))

    def checksum(templates, kind):
        return templates[kind]["metadata"]["annotations"]["checksum/config"]

    assert checksum(php, "Deployment") != checksum(base, "Deployment")
    assert checksum(php, "StatefulSet") == checksum(base, "StatefulSet")
    assert checksum(database, "StatefulSet") != checksum(base, "StatefulSet")
    assert checksum(database, "Deployment") == checksum(base, "Deployment")


def test_a_finished_setup_job_is_cleaned_up_after_a_day(local):
    assert only(local, "Job")["spec"]["ttlSecondsAfterFinished"] == 86400


# --- escaping: what a user typed reaches containers as data ------------------------

HOSTILE_NAMES = [
    "$(WORDPRESS_DB_PASSWORD)",
    "Shop $(WORDPRESS_DB_PASSWORD) $$(HOME)",
    "`id` shop",
    "$(id) shop",
    "'; rm -rf / #",
    "\"double\" and 'single'",
    "--require=/tmp/x.php",
    "Café 🛒 emoji",
    "متجر عربي",
    "חנות ⁦mixed⁩ RTL",
    "{{ .Values.existingSecret }}",
    "\\$(WORDPRESS_DB_PASSWORD)\\",
]
DB_PASSWORD = "Sentinel-Db-Password-9f3k"


def kubelet_expand(value: str, env: dict[str, str]) -> str:
    """What the kubelet does to env values, command and args
    (kubernetes/third_party/forked/golang/expansion): $(NAME) of a defined
    variable becomes its value, $$ becomes $, anything else stays."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "$" and i + 1 < len(value):
            following = value[i + 1]
            if following == "$":
                out.append("$")
                i += 2
                continue
            if following == "(":
                end = value.find(")", i + 2)
                if end != -1:
                    name = value[i + 2:end]
                    out.append(env.get(name, f"$({name})"))
                    i = end + 1
                    continue
                out.append("$(")
                i += 2
                continue
            out.append("$" + following)
            i += 2
            continue
        out.append(value[i])
        i += 1
    return "".join(out)


@pytest.mark.parametrize(
    ("value", "expanded"),
    # Upstream's own cases (expand_test.go), with VAR_A=A, VAR_B=B.
    [
        ("$(VAR_A)-$(VAR_A)", "A-A"),
        ("$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),
        ("f000-$$VAR_A", "f000-$VAR_A"),
        ("$(VAR_DNE)", "$(VAR_DNE)"),
        ("$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"),
        ("$$$$$$$(VAR_A)", "$$$A"),
        ("$VAR_A)", "$VAR_A)"),
        ("${VAR_A}", "${VAR_A}"),
        ("$(VAR_B)_______$(A", "B_______$(A"),
        ("$(VAR_A)foobarzab$", "Afoobarzab$"),
        ("--$($($($($--", "--$($($($($--"),
        ("$(VAR_A$(VAR_B))", "$(VAR_A$(VAR_B))"),
    ],
)
def test_the_expansion_double_behaves_like_the_kubelet(value, expanded):
    assert kubelet_expand(value, {"VAR_A": "A", "VAR_B": "B"}) == expanded


def expanded_containers(docs: list[dict]):
    """(name, env, command+args) of every container as the kubelet runs it,
    with every Secret-backed variable set to a sentinel; env holds only the
    variables whose value the chart wrote."""
    for name, container in containers(docs):
        env: dict[str, str] = {}
        secrets: dict[str, str] = {}
        for var in container.get("env", []):
            if "valueFrom" in var:
                secrets[var["name"]] = DB_PASSWORD
            else:
                env[var["name"]] = kubelet_expand(var.get("value", ""), {**env, **secrets})
        argv = [kubelet_expand(a, {**env, **secrets})
                for a in container.get("command", []) + container.get("args", [])]
        yield name, env, argv


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_store_name_reaches_the_setup_as_exact_data_and_nowhere_else(tmp_path, name):
    values = yaml.safe_load(STORE_VALUES.read_text())
    values["store"]["name"] = name
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values, allow_unicode=True))
    docs = render(CHART, [DEPLOY_VALUES / "woocommerce-local.yaml", path])
    validate(docs, K8S_VERSIONS[-1])

    assert only(docs, "ConfigMap", "wpcli")["data"]["store-name"] == name
    setup = workload_pod(docs, "setup")
    [scripts] = [v for v in setup["volumes"] if v["name"] == "scripts"]
    assert {"key": "store-name", "path": "store-name"} in scripts["configMap"]["items"]
    env = container_env(docs, "setup")
    assert env["STORE_TITLE_FILE"]["value"] == "/opt/storeplatform/scripts/store-name"
    for container, env, argv in expanded_containers(docs):
        for var, value in env.items():
            assert name not in value, f"{container}: {var} carries the name"
            assert DB_PASSWORD not in value, f"{container}: {var} leaks the password"
        assert not any(name in a or DB_PASSWORD in a for a in argv), container


def test_relay_settings_reach_the_containers_exactly_whatever_they_contain():
    sneaky = "$(WORDPRESS_DB_PASSWORD)$$x`id`"
    docs = render(CHART, [STORE_VALUES], {**SMTP_RELAY, "smtp.username": sneaky})
    for container, env, _ in expanded_containers(docs):
        if "STORE_SMTP_USER" in env:
            assert env["STORE_SMTP_USER"] == sneaky, container


@pytest.mark.parametrize("name", ["two\nlines", "tab\there", "bell\x07", "nul-ish\x1b[31m"])
def test_a_name_with_control_characters_is_refused_by_the_chart_too(tmp_path, name):
    values = yaml.safe_load(STORE_VALUES.read_text())
    values["store"]["name"] = name
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    error = render_error(CHART, [path])
    assert "/store/name" in error, error


# --- chart-testing values ---------------------------------------------------------

CI_VALUES = sorted((CHARTS / "woocommerce" / "ci").glob("*-values.yaml"))


def test_without_the_platforms_values_the_chart_refuses_naming_them():
    """Why a bare ``helm lint --strict charts/woocommerce`` fails (and the
    ci/ folder exists): ``store`` and ``existingSecret`` have no default."""
    error = render_error("woocommerce", values_files=[])
    assert "missing properties 'store', 'existingSecret'" in error, error


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda path: path.name)
def test_the_ci_values_lint_render_and_fit_their_quota(values):
    lint("woocommerce", [values])
    docs = render("woocommerce", [values])
    validate(docs, K8S_VERSIONS[-1])
    [quota] = of_kind(docs, "ResourceQuota")
    hard = quota["spec"]["hard"]
    cpu, memory = store_requests(docs)
    limit_cpu, limit_memory = store_requests(docs, "limits")
    assert cpu <= parse_cpu(hard["requests.cpu"])
    assert memory <= parse_memory(hard["requests.memory"])
    assert limit_cpu <= parse_cpu(hard["limits.cpu"])
    assert limit_memory <= parse_memory(hard["limits.memory"])


# --- backups and maintenance (issue 12) --------------------------------------------

OBJECT_STORAGE = {
    "backup.objectStorage.endpoint": "https://s3.eu-central-003.backblazeb2.com",
    "backup.objectStorage.bucket": "acme-backups",
    "backup.objectStorage.region": "eu-central-003",
    "backup.objectStorage.sse": "AES256",
    "backup.objectStorage.egress[0].cidr": "203.0.113.10/32",
    "backup.objectStorage.egress[0].port": 443,
}
BACKUP_ENV = {"S3_ENDPOINT", "S3_BUCKET", "S3_REGION", "S3_SSE", "S3_ACCESS_KEY_FILE",
              "S3_SECRET_KEY_FILE", "DB_HOST", "DB_PORT", "DB_NAME", "DB_USER",
              "DB_PASSWORD_FILE", "FILES_DIR"}


def backup_template(docs: list[dict], action: str) -> tuple[dict, dict]:
    """The CronJob template of ``action`` and its pod spec."""
    [cron] = [d for d in of_kind(docs, "CronJob")
              if d["metadata"]["name"] == f"store-test-{action}"]
    return cron, cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_the_backup_scripts_ship_in_a_configmap_exactly_as_in_files(local):
    configmap = only(local, "ConfigMap", "-backup")
    for name in ("backup.sh", "restore.sh", "backup-common.sh"):
        assert configmap["data"][name] == (CHARTS / CHART / "files" / name).read_text(), name


@pytest.mark.parametrize("action", ["backup", "restore"])
def test_backup_and_restore_are_suspended_cronjob_templates_of_one_try(local, action):
    cron, pod = backup_template(local, action)
    assert cron["spec"]["suspend"] is True
    assert cron["metadata"]["labels"]["app.kubernetes.io/component"] == "backup"
    job = cron["spec"]["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0 and job["activeDeadlineSeconds"] == 3600
    labels = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "backup"
    assert pod["restartPolicy"] == "Never"
    [container] = pod["containers"]
    assert container["name"] == action
    assert container["command"] == ["bash", f"/backup/{action}.sh"]
    platform = yaml.safe_load((CHARTS / "platform" / "values.yaml").read_text())["image"]
    assert container["image"] == f"{platform['repository']}:{platform['tag']}"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsUser"] == 33  # the site's files stay the site's
    assert container["resources"] == {"requests": {"cpu": "50m", "memory": "128Mi"},
                                      "limits": {"cpu": "500m", "memory": "192Mi"}}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert set(env) >= BACKUP_ENV and "BACKUP_PREFIX" not in env  # the platform adds it
    assert env["DB_HOST"] == "store-test-mariadb" and env["DB_NAME"] == "wordpress"
    assert env["FILES_DIR"] == "/var/www/html/wp-content"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/backup"]["readOnly"] is True
    assert mounts["/var/www/html"]["readOnly"] is (action == "backup")
    for variable in ("DB_PASSWORD_FILE", "S3_ACCESS_KEY_FILE", "S3_SECRET_KEY_FILE"):
        assert secret_file(pod, container, env[variable]), variable
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["object-storage"]["secret"]["secretName"] == "store-backup-s3"
    assert volumes["object-storage"]["secret"]["optional"] is True
    assert volumes["html"]["persistentVolumeClaim"]["claimName"] == "store-test-wordpress"
    # A backup of the running site shares its node (ReadWriteOnce volume); a
    # restore runs in maintenance, the site stopped.
    if action == "backup":
        [term] = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "wordpress"
    else:
        assert "affinity" not in pod


def test_object_storage_values_reach_the_jobs_as_typed():
    endpoint = "http://minio.example:9000/$(S3_BUCKET)"
    docs = render(CHART, [STORE_VALUES], {**OBJECT_STORAGE,
                                           "backup.objectStorage.endpoint": endpoint})
    _, pod = backup_template(docs, "backup")
    env = chartkit.container_env(pod["containers"][0], {})
    assert env["S3_ENDPOINT"] == endpoint
    assert (env["S3_BUCKET"], env["S3_REGION"], env["S3_SSE"]) == (
        "acme-backups", "eu-central-003", "AES256")


def test_backup_pods_reach_dns_the_database_and_the_object_storage_only():
    from provisioning.tests.netpol import Address, Network, Pod, pods_of

    object_storage, elsewhere = Address("s3", "203.0.113.10"), Address("web", "93.184.216.34")
    dns = Pod("coredns", "kube-system", {"k8s-app": "kube-dns"})
    namespaces = {"kube-system": {"kubernetes.io/metadata.name": "kube-system"},
                  "store-test": {}}

    def network(docs):
        pods = {p.labels.get("app.kubernetes.io/component"): p
                for p in pods_of(docs, "store-test")}
        return Network(of_kind(docs, "NetworkPolicy"), "store-test", namespaces), pods

    net, pods = network(render(CHART, [STORE_VALUES], OBJECT_STORAGE))
    backup = pods["backup"]
    assert net.allows(backup, dns, 53, "UDP")
    assert net.allows(backup, pods["mariadb"], 3306)
    assert net.allows(backup, object_storage, 443)
    assert not net.allows(backup, object_storage, 80)
    assert not net.allows(backup, elsewhere, 443)
    assert not net.allows(backup, pods["wordpress"], 8080)
    assert not net.allows(pods["wordpress"], object_storage, 443)
    assert not net.allows(pods["wordpress"], backup, 8080)
    # Until the platform fills objectStorage.egress, no way out at all.
    net, pods = network(render(CHART, [STORE_VALUES]))
    assert not net.allows(pods["backup"], object_storage, 443)
    assert net.allows(pods["backup"], pods["mariadb"], 3306)


def test_maintenance_stops_the_site_and_cron_keeps_mariadb_and_shows_the_paused_page():
    backend = "storeplatform-web.storeplatform.svc.cluster.local"
    docs = render(CHART, [DEPLOY_VALUES / "woocommerce-local.yaml", STORE_VALUES],
                  {"maintenance": True, "paused.backend": backend, "paused.port": 8080})
    assert only(docs, "Deployment", "-wordpress")["spec"]["replicas"] == 0
    assert only(docs, "StatefulSet", "-mariadb")["spec"]["replicas"] == 1
    assert only(docs, "CronJob", "-cron")["spec"]["suspend"] is True
    assert not of_kind(docs, "Job"), "no setup Job may write to a database being restored"
    paused = only(docs, "Service", "-paused")
    assert paused["spec"] == {**paused["spec"], "type": "ExternalName", "externalName": backend}
    [path] = only(docs, "Ingress")["spec"]["rules"][0]["http"]["paths"]
    assert path["backend"]["service"]["name"] == "store-test-paused"
    # The restore Job's volume is free: it needs no WordPress pod to land next to.
    _, restore = backup_template(docs, "restore")
    _, backup = backup_template(docs, "backup")
    assert "affinity" not in restore and "affinity" not in backup
    validate(docs, K8S_VERSIONS[-1])


@pytest.mark.parametrize(
    ("set_values", "named"),
    [
        ({"backup.objectStorage.sse": "rot13"}, "sse"),
        ({"backup.objectStorage.bucket": "Bad_Bucket"}, "bucket"),
        ({"backup.objectStorage.endpoint": "s3.example.com"}, "endpoint"),
        ({"backup.objectStorage.egress[0].cidr": "s3.example.com",
          "backup.objectStorage.egress[0].port": 443}, "cidr"),
        ({"backup.image.tag": "latest"}, "tag"),
        ({"backup.activeDeadlineSeconds": 0}, "activeDeadlineSeconds"),
        ({"maintenance": "yes"}, "maintenance"),
    ],
)
def test_the_schema_rejects_bad_backup_values_naming_them(set_values, named):
    error = render_error(CHART, [STORE_VALUES], set_values)
    assert named in error, error
