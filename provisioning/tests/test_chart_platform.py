"""charts/platform, checked offline: lint, schema, Kubernetes validity, policy, RBAC.

Everything drives the real helm binary (see chartkit). What only a cluster can
show (that the pods start, that the NetworkPolicies and the admission policy
behave) is left to deploy/e2e-cluster.sh.
"""

from __future__ import annotations

import re

import pytest

from provisioning.tests import chartkit

CHART = "platform"
README = chartkit.CHARTS / CHART / "README.md"
PROFILES = {
    "defaults": (),
    "local": (chartkit.DEPLOY_VALUES / "platform-local.yaml",),
    "vps": (chartkit.DEPLOY_VALUES / "platform-vps.yaml",),
}
# Every optional part switched on, and the external database and Redis.
EVERYTHING_ON = {
    "admissionPolicy.enabled": True,
    "backup.enabled": True,
    "web.autoscaling.enabled": True,
    "ingress.tls.enabled": True,
    "ingress.tls.clusterIssuer": "letsencrypt-prod",
    "storeBackups.objectStorage.bucket": "store-backups",
    "storeBackups.egress.cidrs": "{203.0.113.0/24}",
}
EXTERNAL_SERVICES = {
    "postgresql.enabled": False,
    "externalDatabase.existingSecret": "platform-database",
    "redis.enabled": False,
    "externalRedis.existingSecret": "platform-redis",
    "backup.enabled": True,
}
HELM_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}
NAMESPACE = "storeplatform"
RELEASE = "storeplatform"


def render(values_files=(), set_values=None) -> list[dict]:
    return chartkit.render(CHART, values_files, set_values, release=RELEASE, namespace=NAMESPACE)


@pytest.fixture(scope="module")
def renders() -> dict[str, list[dict]]:
    """One rendering per profile, plus the all-on and external variants."""
    docs = {name: render(files) for name, files in PROFILES.items()}
    docs["everything-on"] = render(PROFILES["vps"], EVERYTHING_ON)
    docs["external-services"] = render((), EXTERNAL_SERVICES)
    return docs


@pytest.fixture(scope="module")
def all_docs(renders) -> list[tuple[str, dict]]:
    return [(variant, doc) for variant, docs in renders.items() for doc in docs]


def one(docs: list[dict], kind: str, name: str) -> dict:
    found = [d for d in chartkit.of_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def component_of(doc: dict) -> str:
    return doc["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]


# --- lint and validity -------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_the_chart_lints_strictly_with_each_profile(profile):
    chartkit.lint(CHART, PROFILES[profile])


@pytest.mark.parametrize("version", chartkit.K8S_VERSIONS)
def test_every_rendering_is_valid_for_supported_kubernetes_versions(renders, version):
    # "everything-on" is the vps profile plus every optional part; together
    # with these two it holds every object any variant renders.
    for variant in ("everything-on", "external-services", "local"):
        chartkit.validate(renders[variant], version)


def test_the_chart_renders_every_part_of_the_platform(renders):
    kinds = {(d["kind"], d["metadata"]["name"]) for d in renders["everything-on"]}
    for kind, name in [
        ("Deployment", "storeplatform-web"),
        ("Deployment", "storeplatform-worker"),
        ("Deployment", "storeplatform-beat"),
        ("Deployment", "storeplatform-redis"),
        ("StatefulSet", "storeplatform-postgresql"),
        ("Job", "storeplatform-migrate-1"),
        ("CronJob", "storeplatform-backup"),
        ("HorizontalPodAutoscaler", "storeplatform-web"),
        ("Ingress", "storeplatform"),
        ("ServiceAccount", "storeplatform"),
        ("ClusterRole", "storeplatform-provisioner"),
        ("ClusterRoleBinding", "storeplatform-provisioner"),
        ("ValidatingAdmissionPolicy", "storeplatform-store-namespaces-only"),
        ("ValidatingAdmissionPolicyBinding", "storeplatform-store-namespaces-only"),
    ]:
        assert (kind, name) in kinds, f"{kind}/{name} is missing"


# --- policy: resources, security, images, secrets --------------------------


def test_every_container_has_requests_limits_and_a_restricted_security_context(renders):
    for variant, docs in renders.items():
        for name, container in chartkit.containers(docs):
            where = f"{variant}: {name}"
            resources = container.get("resources", {})
            for section in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(section, {})), (
                    f"{where} lacks cpu/memory {section}"
                )
            ctx = container.get("securityContext", {})
            assert ctx.get("allowPrivilegeEscalation") is False, where
            assert ctx.get("readOnlyRootFilesystem") is True, where
            assert ctx.get("runAsNonRoot") is True, where
            assert ctx.get("capabilities", {}).get("drop") == ["ALL"], where
            assert ctx.get("seccompProfile", {}).get("type") == "RuntimeDefault", where


def test_every_pod_runs_as_a_non_root_user(renders):
    for variant, docs in renders.items():
        for owner, spec in chartkit.pod_specs(docs):
            ctx = spec.get("securityContext", {})
            assert ctx.get("runAsNonRoot") is True, f"{variant}: {owner}"
            assert ctx.get("runAsUser", 0) > 0, f"{variant}: {owner} runs as root"
            assert ctx.get("seccompProfile", {}).get("type") == "RuntimeDefault"


def test_the_platform_pods_run_as_the_image_user(renders):
    for owner, spec in chartkit.pod_specs(renders["defaults"]):
        if owner.endswith(("-web", "-worker", "-beat")) or "-migrate-" in owner:
            assert spec["securityContext"]["runAsUser"] == 10001, owner


def test_every_image_is_pinned_to_an_exact_tag(renders):
    for variant, docs in renders.items():
        for name, container in chartkit.containers(docs):
            image = container["image"]
            repository, _, tag = image.rpartition(":")
            assert repository and "/" not in tag, f"{variant}: {name} image {image} has no tag"
            assert tag not in {"latest", "stable", "main", "master"}, f"{name}: {image}"
            if not repository.endswith("storeplatform"):
                assert re.search(r"\d+\.\d+", tag), f"{name}: third-party {image} not versioned"


SECRETISH = re.compile(r"SECRET|PASSWORD|TOKEN|_KEY$|AUTH|DATABASE_URL|REDIS_URL")


def secret_mount_paths(docs: list[dict]) -> dict[str, list[str]]:
    """Where each container (named as chartkit.containers names it) mounts Secrets."""
    paths: dict[str, list[str]] = {}
    for owner, spec in chartkit.pod_specs(docs):
        secret_volumes = {v["name"] for v in spec.get("volumes", []) if "secret" in v}
        for container in spec.get("initContainers", []) + spec.get("containers", []):
            paths[f"{owner}/{container['name']}"] = [
                m["mountPath"] for m in container.get("volumeMounts", [])
                if m["name"] in secret_volumes
            ]
    return paths


def test_no_secret_value_is_rendered_in_plain_text(renders):
    for variant, docs in renders.items():
        assert not chartkit.of_kind(docs, "Secret"), f"{variant} renders a Secret"
        for config_map in chartkit.of_kind(docs, "ConfigMap"):
            for key, value in config_map.get("data", {}).items():
                assert not SECRETISH.search(key), f"{variant}: ConfigMap key {key}"
                assert "://" not in value or "@" not in value, f"{key} holds credentials"
        for name, container in chartkit.containers(docs):
            for env in container.get("env", []):
                if not SECRETISH.search(env["name"]):
                    continue
                if "valueFrom" in env:
                    assert "secretKeyRef" in env["valueFrom"], f"{name}: {env['name']}"
                    continue
                if env["name"].endswith("_FILE"):
                    # The path of a file in a mounted Secret (store backup keys).
                    assert any(env["value"].startswith(path + "/")
                               for path in secret_mount_paths(docs)[name]), (
                        f"{variant}: {name} sets {env['name']} outside a mounted Secret")
                    continue
                # Only URLs assembled from other variables: $(POSTGRES_PASSWORD).
                value = env.get("value", "")
                assert "$(" in value, f"{variant}: {name} sets {env['name']} in plain text"
                without_refs = re.sub(r"\$\([A-Z_]+\)", "", value)
                assert not re.search(r":[^/@:]+@", without_refs), f"{name}: {env['name']}"


def test_secrets_cannot_be_passed_as_plain_config():
    error = chartkit.render_error(CHART, set_values={"config.extraEnv.DJANGO_SECRET_KEY": "x"})
    # helm 4.3 reports this propertyNames failure at a wrong location, but names the key.
    assert "invalid propertyName 'DJANGO_SECRET_KEY'" in error


def test_the_database_and_redis_urls_come_from_existing_secrets_when_external(renders):
    docs = renders["external-services"]
    assert not chartkit.of_kind(docs, "StatefulSet")
    web = one(docs, "Deployment", "storeplatform-web")
    env = {e["name"]: e for e in web["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "platform-database",
        "key": "database-url",
    }
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "platform-redis"
    assert "POSTGRES_PASSWORD" not in env


# --- processes ---------------------------------------------------------------


def test_beat_runs_exactly_one_replica_and_never_two_during_a_rollout(renders):
    for variant, docs in renders.items():
        beat = one(docs, "Deployment", "storeplatform-beat")
        assert beat["spec"]["replicas"] == 1, variant
        assert beat["spec"]["strategy"] == {"type": "Recreate"}, variant
        args = beat["spec"]["template"]["spec"]["containers"][0]["args"]
        assert "--scheduler=django_celery_beat.schedulers:DatabaseScheduler" in args


def test_beat_replicas_cannot_be_configured():
    error = chartkit.render_error(CHART, set_values={"beat.replicas": 2})
    assert "/beat" in error and "replicas" in error


def test_the_worker_runs_celery_with_the_configured_concurrency(renders):
    docs = render((), {"worker.concurrency": 7, "worker.replicas": 3})
    worker = one(docs, "Deployment", "storeplatform-worker")
    assert worker["spec"]["replicas"] == 3
    args = worker["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:4] == ["celery", "--app=storeplatform", "worker", "--loglevel=INFO"]
    assert "--concurrency=$(CELERY_WORKER_CONCURRENCY)" in args
    config = one(docs, "ConfigMap", "storeplatform-config")
    assert config["data"]["CELERY_WORKER_CONCURRENCY"] == "7"


def test_the_worker_may_finish_a_helm_run_on_shutdown(renders):
    for variant in PROFILES:
        docs = renders[variant]
        config = one(docs, "ConfigMap", "storeplatform-config")["data"]
        worker = one(docs, "Deployment", "storeplatform-worker")
        grace = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > int(config["STORE_PROVISION_TIMEOUT"]), variant


def test_web_probes_health_and_readiness_and_is_scraped_for_metrics(renders):
    web = one(renders["defaults"], "Deployment", "storeplatform-web")
    pod = web["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    host = container["readinessProbe"]["httpGet"]["httpHeaders"][0]["value"]
    config = one(renders["defaults"], "ConfigMap", "storeplatform-config")["data"]
    assert host in config["DJANGO_ALLOWED_HOSTS"].split(",")
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert container["args"][:2] == ["gunicorn", "storeplatform.wsgi:application"]


def test_web_scales_with_an_hpa_when_autoscaling_is_on(renders):
    web = one(renders["everything-on"], "Deployment", "storeplatform-web")
    assert "replicas" not in web["spec"]
    hpa = one(renders["everything-on"], "HorizontalPodAutoscaler", "storeplatform-web")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "storeplatform-web"


def test_migrations_run_once_per_revision_and_app_pods_wait_for_them(renders):
    job = one(renders["defaults"], "Job", "storeplatform-migrate-1")
    assert "migrate --noinput" in job["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    assert "helm.sh/hook" not in job["metadata"].get("annotations", {})
    for name in ("web", "worker", "beat"):
        spec = one(renders["defaults"], "Deployment", f"storeplatform-{name}")["spec"]
        init = spec["template"]["spec"]["initContainers"]
        assert [c["name"] for c in init] == ["wait-for-migrations"], name
        assert "migrate --check" in init[0]["command"][-1]


def test_only_web_and_worker_mount_a_service_account_token(renders):
    for owner, spec in chartkit.pod_specs(renders["everything-on"]):
        mounts = spec.get("automountServiceAccountToken")
        if owner.endswith(("-web", "-worker")):
            assert mounts is True and spec["serviceAccountName"] == "storeplatform", owner
        else:
            assert mounts is False, f"{owner} mounts a token it does not need"


def test_the_platform_passes_its_settings_to_every_process(renders):
    config = one(renders["vps"], "ConfigMap", "storeplatform-config")["data"]
    assert config["DJANGO_DEBUG"] == "false"
    assert config["STORE_VALUES_PROFILE"] == "vps"
    assert config["STORE_SCHEME"] == "https"
    assert config["STORE_TLS_MODE"] == "per-store"
    assert config["STORE_MAX_DOMAINS"] == "5"
    assert config["HELM_BIN"] == "/usr/local/bin/helm"
    assert config["KUBECONFIG"] == ""
    assert config["CSRF_TRUSTED_ORIGINS"] == "https://platform.example.com"
    for name in ("web", "worker", "beat"):
        container = one(renders["vps"], "Deployment", f"storeplatform-{name}")["spec"]["template"][
            "spec"
        ]["containers"][0]
        assert container["envFrom"] == [{"configMapRef": {"name": "storeplatform-config"}}]


def test_https_redirect_and_hsts_are_on_only_where_the_platform_is_served_over_https(renders):
    https = one(renders["vps"], "ConfigMap", "storeplatform-config")["data"]
    assert {key: https[key] for key in https if key.startswith("DJANGO_SECURE_")} == {
        "DJANGO_SECURE_SSL_REDIRECT": "true",
        "DJANGO_SECURE_HSTS_SECONDS": "31536000",
        "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
        "DJANGO_SECURE_HSTS_PRELOAD": "true",
    }
    # A plain-HTTP laptop cluster would be redirected to an HTTPS it does not serve.
    http = one(renders["local"], "ConfigMap", "storeplatform-config")["data"]
    assert http["DJANGO_SECURE_SSL_REDIRECT"] == "false"
    assert http["DJANGO_SECURE_HSTS_SECONDS"] == "0"


def test_the_ingress_asks_cert_manager_for_tls_on_the_vps(renders):
    ingress = one(renders["vps"], "Ingress", "storeplatform")
    assert (
        ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    )
    assert ingress["spec"]["tls"] == [
        {"hosts": ["platform.example.com"], "secretName": "storeplatform-tls"}
    ]
    local = one(renders["local"], "Ingress", "storeplatform")
    assert "tls" not in local["spec"]
    assert local["spec"]["ingressClassName"] == "traefik"


def test_the_platform_database_survives_an_uninstall(renders):
    postgres = one(renders["defaults"], "StatefulSet", "storeplatform-postgresql")
    assert postgres["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"
    backups = one(renders["everything-on"], "PersistentVolumeClaim", "storeplatform-backups")
    assert backups["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


# --- network policies --------------------------------------------------------


def selects(policy: dict, labels: dict) -> bool:
    selector = policy["spec"]["podSelector"]
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        assert expr["operator"] == "In"
        if labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def pod_labels(docs: list[dict]) -> dict[str, dict]:
    labels = {}
    for doc in docs:
        if doc["kind"] in chartkit.POD_KINDS:
            labels[doc["metadata"]["name"]] = doc["spec"]["template"]["metadata"]["labels"]
        elif doc["kind"] == "CronJob":
            labels[doc["metadata"]["name"]] = doc["spec"]["jobTemplate"]["spec"]["template"][
                "metadata"
            ]["labels"]
    return labels


def test_every_pod_is_fenced_by_a_default_deny_policy(renders):
    for variant, docs in renders.items():
        policies = chartkit.of_kind(docs, "NetworkPolicy")
        deny = [
            p
            for p in policies
            if set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress")
            and not p["spec"].get("egress")
        ]
        assert len(deny) == 1, f"{variant}: no default-deny NetworkPolicy"
        for owner, labels in pod_labels(docs).items():
            assert selects(deny[0], labels), f"{variant}: {owner} escapes the default deny"


def allowed_egress_ports(policies: list[dict], labels: dict) -> set[int]:
    ports = set()
    for policy in policies:
        if selects(policy, labels):
            for rule in policy["spec"].get("egress") or []:
                ports |= {p["port"] for p in rule.get("ports", [])}
    return ports


def test_each_component_may_reach_only_what_it_needs(renders):
    docs = renders["local"]
    policies = chartkit.of_kind(docs, "NetworkPolicy")
    labels = pod_labels(docs)
    assert allowed_egress_ports(policies, labels["storeplatform-web"]) == {
        53,
        5432,
        6379,
        443,
        6443,
    }
    assert allowed_egress_ports(policies, labels["storeplatform-worker"]) == {
        53,
        5432,
        6379,
        443,
        6443,
        8000,
        8443,
    }
    assert allowed_egress_ports(policies, labels["storeplatform-beat"]) == {53, 5432, 6379}
    assert allowed_egress_ports(policies, labels["storeplatform-migrate-1"]) == {53, 5432, 6379}


def test_only_the_ingress_controller_reaches_the_web_pods(renders):
    policy = one(renders["local"], "NetworkPolicy", "storeplatform-web-ingress")
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]
    (peer,) = rule["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "kube-system"
    }
    assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "traefik"}


# --- RBAC ----------------------------------------------------------------------


def documented_rbac() -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) triples from the README's RBAC table."""
    text = README.read_text()
    match = re.search(r"<!-- rbac-table:begin -->(.*?)<!-- rbac-table:end -->", text, re.S)
    assert match, "charts/platform/README.md lost its rbac-table markers"
    rows = [line for line in match.group(1).strip().splitlines() if line.startswith("|")]
    triples = set()
    for row in rows[2:]:  # header and separator
        group, resources, verbs, _why = (cell.strip() for cell in row.strip("|").split("|"))
        group = "" if group == "core" else group
        for resource in re.findall(r"`([^`]+)`", resources):
            for verb in re.findall(r"`([^`]+)`", verbs):
                triples.add((group, resource, verb))
    assert triples, "the README's RBAC table is empty"
    return triples


def granted_rbac(docs: list[dict]) -> set[tuple[str, str, str]]:
    (role,) = chartkit.of_kind(docs, "ClusterRole")
    triples = set()
    for rule in role["rules"]:
        assert not rule.get("resourceNames") and not rule.get("nonResourceURLs")
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), f"wildcard in {rule}"
                    triples.add((group, resource, verb))
    return triples


def test_the_cluster_role_grants_exactly_what_the_readme_documents(renders):
    documented = documented_rbac()
    for variant, docs in renders.items():
        granted = granted_rbac(docs)
        assert not granted - documented, (
            f"{variant}: undocumented grants {sorted(granted - documented)}"
        )
        assert not documented - granted, (
            f"{variant}: documented but not granted {sorted(documented - granted)}"
        )


def test_the_cluster_role_is_bound_to_the_platform_service_account(renders):
    binding = one(renders["defaults"], "ClusterRoleBinding", "storeplatform-provisioner")
    assert binding["roleRef"]["name"] == "storeplatform-provisioner"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "storeplatform", "namespace": NAMESPACE}
    ]


def test_the_provisioner_may_manage_store_namespaces_and_their_credentials(renders):
    granted = granted_rbac(renders["defaults"])
    for verb in ("create", "get", "list", "watch", "patch", "delete"):
        assert ("", "namespaces", verb) in granted
    for verb in ("create", "get", "delete"):
        assert ("", "secrets", verb) in granted
    assert {("", "events", "list"), ("", "pods", "list"), ("", "pods/log", "get")} <= granted
    assert {
        ("", "persistentvolumeclaims", "list"),
        ("", "persistentvolumeclaims", "delete"),
    } <= granted
    # Never able to change RBAC or cluster-wide objects.
    assert not {t for t in granted if t[0] == "rbac.authorization.k8s.io"}
    assert not {t for t in granted if t[1] in {"nodes", "persistentvolumes", "clusterroles"}}


def test_the_admission_policy_only_applies_to_the_platform_service_account(renders):
    policy = one(
        renders["everything-on"], "ValidatingAdmissionPolicy", "storeplatform-store-namespaces-only"
    )
    condition = policy["spec"]["matchConditions"][0]
    assert condition["expression"] == (
        "request.userInfo.username == 'system:serviceaccount:storeplatform:storeplatform'"
    )
    assert policy["spec"]["failurePolicy"] == "Fail"
    binding = one(
        renders["everything-on"],
        "ValidatingAdmissionPolicyBinding",
        "storeplatform-store-namespaces-only",
    )
    assert binding["spec"]["validationActions"] == ["Deny"]


def resource_of(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    if lower.endswith("s"):
        return lower + "es"
    return lower + "s"


STORE_VALUES = {
    "store.id": "k3x9q2m1ab",
    "store.name": "Acme Shop",
    "store.host": "acme-shop.localtest.me",
    "store.scheme": "http",
    "existingSecret": "store-credentials",
    "ingress.className": "traefik",
}


STORE_TLS_VALUES = {
    **STORE_VALUES,
    "store.scheme": "https",
    "ingress.tls.enabled": True,
    "ingress.tls.clusterIssuer": "letsencrypt-prod",
    "ingress.tls.secretName": "store-k3x9q2m1ab-tls",
}


def ungranted_kinds(docs: list[dict], granted: set) -> list[str]:
    problems = []
    for doc in docs:
        group = doc["apiVersion"].rpartition("/")[0]
        resource = resource_of(doc["kind"])
        missing = {v for v in HELM_VERBS if (group, resource, v) not in granted}
        if missing:
            problems.append(
                f"{doc['kind']} ({group or 'core'}/{resource}): may not {sorted(missing)}"
            )
    return problems


def test_the_coverage_check_notices_a_kind_the_platform_may_not_manage(renders):
    granted = granted_rbac(renders["defaults"])
    budget = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "x"}}
    assert ungranted_kinds([budget], granted) == [
        "PodDisruptionBudget (policy/poddisruptionbudgets): may not "
        "['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']"
    ]


@pytest.mark.parametrize("engine", ["woocommerce", "medusa"])
@pytest.mark.parametrize("profile", ["local", "vps", "vps-tls"])
def test_the_cluster_role_covers_every_kind_a_store_chart_renders(renders, engine, profile):
    if not (chartkit.CHARTS / engine / "Chart.yaml").exists():
        pytest.skip(f"charts/{engine} does not exist yet")
    values = chartkit.DEPLOY_VALUES / f"{engine}-{profile.removesuffix('-tls')}.yaml"
    docs = chartkit.render(
        engine,
        [values] if values.exists() else [],
        STORE_TLS_VALUES if profile.endswith("-tls") else STORE_VALUES,
        release="store-k3x9q2m1ab",
        namespace="store-k3x9q2m1ab",
    )
    problems = ungranted_kinds(docs, granted_rbac(renders["defaults"]))
    assert not problems, (
        f"charts/{engine} renders kinds the platform cannot manage; add them to the "
        f"ClusterRole and the README table: {problems}"
    )


# --- schema ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("set_values", "named"),
    [
        ({"image.tag": "latest"}, "/image/tag"),
        ({"image.tag": ""}, "/image/tag"),
        ({"postgresql.image.tag": "latest"}, "/postgresql/image/tag"),
        ({"worker.concurrency": 0}, "/worker/concurrency"),
        ({"web.replicas": 0}, "/web/replicas"),
        ({"stores.scheme": "ftp"}, "/stores/scheme"),
        ({"stores.tlsMode": "letsencrypt"}, "/stores/tlsMode"),
        ({"stores.dnsResolvers": "{dns.example.com}"}, "/stores/dnsResolvers"),
        ({"stores.valuesProfile": "production"}, "/stores/valuesProfile"),
        ({"stores.provisionTimeout": 5}, "/stores/provisionTimeout"),
        ({"config.host": "Not_A_Host"}, "/config/host"),
        ({"config.logFormat": "xml"}, "/config/logFormat"),
        ({"networkPolicy.apiServer.cidrs": "{not-a-cidr}"}, "/networkPolicy/apiServer/cidrs"),
        ({"unknownSetting": 1}, "unknownSetting"),
        ({"web.resources.limits.memory": "lots"}, "/web/resources/limits/memory"),
        ({"secrets.existingSecret": ""}, "/secrets/existingSecret"),
        ({"postgresql.enabled": False}, "externalDatabase.existingSecret"),
        ({"redis.enabled": False}, "externalRedis.existingSecret"),
    ],
)
def test_bad_values_are_refused_with_a_message_naming_the_value(set_values, named):
    error = chartkit.render_error(CHART, set_values=set_values)
    assert named in error, f"helm's error does not name {named}:\n{error}"


def test_workers_expose_their_metrics_port_for_prometheus(renders):
    worker = one(renders["vps"], "Deployment", "storeplatform-worker")
    pod = worker["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9100"
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["WORKER_METRICS_PORT"] == "9100"
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    assert container["ports"] == [{"name": "metrics", "containerPort": 9100}]


def _env_of_web(docs: list[dict]) -> dict[str, dict]:
    web = one(docs, "Deployment", "storeplatform-web")
    return {e["name"]: e for e in web["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_the_credentials_key_and_the_metrics_token_are_required_in_production(renders):
    for variant in ("defaults", "vps"):
        env = _env_of_web(renders[variant])
        assert "optional" not in env["STORE_CREDENTIALS_KEY"]["valueFrom"]["secretKeyRef"]
        assert env["METRICS_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is False
        config = one(renders[variant], "ConfigMap", "storeplatform-config")["data"]
        assert config["METRICS_PUBLIC"] == "false", variant


def test_metrics_can_be_left_open_only_by_saying_so():
    docs = render(PROFILES["vps"], {"metrics.requireToken": False})
    assert _env_of_web(docs)["METRICS_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert one(docs, "ConfigMap", "storeplatform-config")["data"]["METRICS_PUBLIC"] == "true"


def test_configured_dns_resolvers_are_reachable_from_web_and_worker_only():
    docs = chartkit.render(CHART, [chartkit.DEPLOY_VALUES / "platform-vps.yaml"],
                           {"stores.dnsResolvers": "{1.1.1.1,9.9.9.9}"}, release="storeplatform",
                           namespace="storeplatform")
    policy = one(docs, "NetworkPolicy", "storeplatform-domain-dns-egress")
    [expression] = policy["spec"]["podSelector"]["matchExpressions"]
    assert expression["values"] == ["web", "worker"]
    [rule] = policy["spec"]["egress"]
    assert [p["ipBlock"]["cidr"] for p in rule["to"]] == ["1.1.1.1/32", "9.9.9.9/32"]
    assert {(p["protocol"], p["port"]) for p in rule["ports"]} == {("UDP", 53), ("TCP", 53)}
    config = one(docs, "ConfigMap", "storeplatform-config")["data"]
    assert config["STORE_DNS_RESOLVERS"] == "1.1.1.1,9.9.9.9"


# --- accounts and notifications (issue 16) --------------------------------------


def test_mail_and_sign_up_settings_reach_every_process(renders):
    config = one(renders["vps"], "ConfigMap", "storeplatform-config")["data"]
    assert config["STORE_SIGNUP"] == "closed"
    assert config["PLATFORM_URL"] == "https://platform.example.com"
    assert config["EMAIL_USE_TLS"] == "true" and config["EMAIL_PORT"] == "587"
    env = one(renders["vps"], "Deployment", "storeplatform-worker")["spec"]["template"]["spec"][
        "containers"][0]["env"]
    (password,) = [e for e in env if e["name"] == "EMAIL_HOST_PASSWORD"]
    assert password["valueFrom"]["secretKeyRef"]["optional"] is True


def test_workers_reach_webhooks_on_public_addresses_only_and_smtp_when_set(renders, tmp_path):
    docs = renders["local"]
    labels = pod_labels(docs)
    webhook = one(docs, "NetworkPolicy", "storeplatform-webhook-egress")
    assert selects(webhook, labels["storeplatform-worker"])
    assert not selects(webhook, labels["storeplatform-web"])
    (rule,) = webhook["spec"]["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 443}]
    v4, v6 = (peer["ipBlock"] for peer in rule["to"])
    assert v4["cidr"] == "0.0.0.0/0"
    for internal in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8",
                     "169.254.0.0/16", "100.64.0.0/10", "224.0.0.0/4"):
        assert internal in v4["except"]
    assert {"::1/128", "fc00::/7", "fe80::/10"} <= set(v6["except"])
    assert not [d for d in chartkit.of_kind(docs, "NetworkPolicy")
                if d["metadata"]["name"] == "storeplatform-smtp-egress"]

    smtp_values = tmp_path / "smtp.yaml"
    smtp_values.write_text("notifications:\n  smtp:\n    host: smtp.example.com\n"
                           "    cidrs: [203.0.113.7/32]\n")
    docs = render((*PROFILES["vps"], smtp_values))
    smtp = one(docs, "NetworkPolicy", "storeplatform-smtp-egress")
    (rule,) = smtp["spec"]["egress"]
    assert rule["to"] == [{"ipBlock": {"cidr": "203.0.113.7/32"}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 587}]
    labels = pod_labels(docs)
    assert selects(smtp, labels["storeplatform-web"])
    assert not selects(smtp, labels["storeplatform-beat"])


def test_a_bad_sign_up_mode_is_refused_naming_the_value():
    error = chartkit.render_error(CHART, set_values={"notifications.signup": "maybe"})
    assert "/notifications/signup" in error, error


# --- store backups (issue 12) ---------------------------------------------------

STORE_BACKUPS_ON = """\
storeBackups:
  objectStorage:
    endpoint: https://s3.example.com
    bucket: example-store-backups
    region: eu-central-1
    prefix: shops/eu
    sse: AES256
  existingSecret: site-store-backups
  schedule: "30 1 * * *"
  spreadMinutes: 60
  keep: 10
  keepAfterDelete: 30
  timeout: 1800
  egress:
    cidrs: [198.51.100.0/24, "2001:db8::/32"]
    port: 8443
"""
KEYS_DIR = "/var/run/storeplatform/store-backups"


def pod_spec(docs: list[dict], name: str) -> dict:
    return one(docs, "Deployment", name)["spec"]["template"]["spec"]


def test_store_backup_settings_reach_every_process_through_the_config_map(tmp_path):
    values = tmp_path / "store-backups.yaml"
    values.write_text(STORE_BACKUPS_ON)
    config = one(render((*PROFILES["vps"], values)), "ConfigMap", "storeplatform-config")["data"]
    assert {k: v for k, v in config.items() if k.startswith("STORE_BACKUP_")} == {
        "STORE_BACKUP_S3_ENDPOINT": "https://s3.example.com",
        "STORE_BACKUP_S3_BUCKET": "example-store-backups",
        "STORE_BACKUP_S3_REGION": "eu-central-1",
        "STORE_BACKUP_S3_PREFIX": "shops/eu",
        "STORE_BACKUP_S3_SSE": "AES256",
        "STORE_BACKUP_SCHEDULE": "30 1 * * *",
        "STORE_BACKUP_SPREAD_MINUTES": "60",
        "STORE_BACKUP_KEEP": "10",
        "STORE_BACKUP_KEEP_AFTER_DELETE": "30",
        "STORE_BACKUP_TIMEOUT": "1800",
        # The stores' backup Jobs run the platform's own image.
        "STORE_BACKUP_IMAGE": "ghcr.io/storeplatform/storeplatform:0.1.0",
    }


def test_with_a_bucket_the_keys_are_mounted_files_never_environment_values(tmp_path):
    values = tmp_path / "store-backups.yaml"
    values.write_text(STORE_BACKUPS_ON)
    docs = render((*PROFILES["vps"], values))
    for name in ("storeplatform-web", "storeplatform-worker", "storeplatform-beat"):
        spec = pod_spec(docs, name)
        (volume,) = [v for v in spec["volumes"] if v["name"] == "store-backup-keys"]
        assert volume["secret"]["secretName"] == "site-store-backups"
        assert volume["secret"]["optional"] is False
        assert {i["key"] for i in volume["secret"]["items"]} == {"access-key", "secret-key"}
        container = spec["containers"][0]
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "store-backup-keys"]
        assert mount == {"name": "store-backup-keys", "mountPath": KEYS_DIR, "readOnly": True}
        env = {e["name"]: e for e in container["env"]}
        assert env["STORE_BACKUP_S3_ACCESS_KEY_FILE"] == {
            "name": "STORE_BACKUP_S3_ACCESS_KEY_FILE", "value": f"{KEYS_DIR}/access-key"}
        assert env["STORE_BACKUP_S3_SECRET_KEY_FILE"] == {
            "name": "STORE_BACKUP_S3_SECRET_KEY_FILE", "value": f"{KEYS_DIR}/secret-key"}
        assert not [e for e in env.values()
                    if e.get("valueFrom", {}).get("secretKeyRef", {}).get("name")
                    == "site-store-backups"], f"{name} reads a backup key into its environment"
    for version in chartkit.K8S_VERSIONS:
        chartkit.validate(docs, version)


def test_with_a_bucket_only_the_worker_may_reach_the_object_storage(tmp_path):
    values = tmp_path / "store-backups.yaml"
    values.write_text(STORE_BACKUPS_ON)
    docs = render((*PROFILES["vps"], values))
    policy = one(docs, "NetworkPolicy", "storeplatform-store-backups-egress")
    (rule,) = policy["spec"]["egress"]
    assert rule["to"] == [{"ipBlock": {"cidr": "198.51.100.0/24"}},
                          {"ipBlock": {"cidr": "2001:db8::/32"}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8443}]
    labels = pod_labels(docs)
    assert selects(policy, labels["storeplatform-worker"])
    for other in ("storeplatform-web", "storeplatform-beat", "storeplatform-migrate-1"):
        assert not selects(policy, labels[other]), other
        assert 8443 not in allowed_egress_ports(chartkit.of_kind(docs, "NetworkPolicy"),
                                                labels[other]), other


def test_without_a_bucket_store_backups_are_off_and_nothing_waits_for_their_secret(renders):
    for variant, docs in renders.items():
        if variant == "everything-on":
            continue
        config = one(docs, "ConfigMap", "storeplatform-config")["data"]
        assert config["STORE_BACKUP_S3_BUCKET"] == "", variant
        for doc in docs:
            assert "store-backup" not in doc["metadata"]["name"], f"{variant}: {doc['kind']}"
            if doc["kind"] not in chartkit.POD_KINDS:
                continue
            spec = doc["spec"]["template"]["spec"]
            secrets = [v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v]
            assert "storeplatform-store-backups" not in secrets, f"{variant}: {doc['metadata']}"
            for container in spec["containers"]:
                names = {e["name"] for e in container.get("env", [])}
                assert not {n for n in names if n.startswith("STORE_BACKUP_")}, variant


@pytest.mark.parametrize(
    ("set_values", "named"),
    [
        ({"storeBackups.objectStorage.bucket": "Not_A_Bucket"},
         "/storeBackups/objectStorage/bucket"),
        ({"storeBackups.objectStorage.endpoint": "s3.example.com"},
         "/storeBackups/objectStorage/endpoint"),
        ({"storeBackups.objectStorage.sse": "aws:kms:dsse"}, "/storeBackups/objectStorage/sse"),
        ({"storeBackups.objectStorage.prefix": "/shops"}, "/storeBackups/objectStorage/prefix"),
        ({"storeBackups.objectStorage.prefix": "shops/$(HOME)"},
         "/storeBackups/objectStorage/prefix"),
        ({"storeBackups.schedule": "daily"}, "/storeBackups/schedule"),
        ({"storeBackups.keep": 0}, "/storeBackups/keep"),
        ({"storeBackups.timeout": 5}, "/storeBackups/timeout"),
        ({"storeBackups.egress.cidrs": "{s3.example.com}"}, "/storeBackups/egress/cidrs"),
        ({"storeBackups.existingSecret": ""}, "/storeBackups/existingSecret"),
        ({"storeBackups.accessKey": "AKIA..."}, "accessKey"),
        # A bucket without the addresses the worker's NetworkPolicy must open.
        ({"storeBackups.objectStorage.bucket": "store-backups"}, "storeBackups.egress.cidrs"),
    ],
)
def test_bad_store_backup_values_are_refused_naming_the_value(set_values, named):
    error = chartkit.render_error(CHART, set_values=set_values)
    assert named in error, f"helm's error does not name {named}:\n{error}"
