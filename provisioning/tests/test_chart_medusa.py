"""Offline checks of charts/medusa: lint, render, Kubernetes schemas, policy.

Real helm renders the chart with the values the platform would pass (the
profile file from deploy/values plus generated store values); no cluster is
involved. What a cluster would add (pods actually starting, the init
container migrating, Traefik routing) cannot be checked here.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from provisioning.tests import chartkit
from provisioning.tests.chartkit import (
    DEPLOY_VALUES,
    K8S_VERSIONS,
    ROOT,
    container_env,
    containers,
    kubelet_expand,
    of_kind,
    parse_cpu,
    parse_memory,
    pod_specs,
    render,
    render_error,
    store_requests,
)

CHART = "medusa"
FIXTURES = Path(__file__).parent / "fixtures" / "medusa"
STORE_VALUES = FIXTURES / "store-values.yaml"
TLS_STORE_VALUES = FIXTURES / "store-values-tls.yaml"
PROFILES = {
    "local": DEPLOY_VALUES / "medusa-local.yaml",
    "vps": DEPLOY_VALUES / "medusa-vps.yaml",
}
SECRET_KEYS = {
    "admin-email",
    "admin-password",
    "db-password",
    "db-root-password",
    "jwt-secret",
    "cookie-secret",
}
# A value that must never show up in a rendered manifest.
SENTINEL = "s3ntinel-Pa55word-never-rendered"

MAX_CPU_REQUEST_M = 500
MAX_MEMORY_REQUEST = 1 * 2**30


def render_store(profile: str = "local", store_values: Path = STORE_VALUES, **set_values):
    return render(CHART, [PROFILES[profile], store_values], set_values or None)


@pytest.fixture(scope="module", params=sorted(PROFILES))
def rendered(request) -> list[dict]:
    return render_store(request.param)


def workload(docs: list[dict], kind: str, suffix: str) -> dict:
    [doc] = [d for d in of_kind(docs, kind) if d["metadata"]["name"].endswith(suffix)]
    return doc


def env_of(container: dict) -> dict[str, dict]:
    return {item["name"]: item for item in container.get("env", [])}


# --- lint, render, schemas ----------------------------------------------------


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_the_chart_lints_strictly_with_each_profile(profile):
    chartkit.lint(CHART, [PROFILES[profile], STORE_VALUES])
    chartkit.lint(CHART, [PROFILES[profile], TLS_STORE_VALUES])


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_rendered_object_is_valid_kubernetes(profile, version):
    for store_values in (STORE_VALUES, TLS_STORE_VALUES):
        chartkit.validate(render_store(profile, store_values), version)


def test_the_chart_is_versioned_0_1_0_and_profiles_do_not_set_store_values():
    chart = (ROOT / "charts" / CHART / "Chart.yaml").read_text()
    assert "\nversion: 0.1.0\n" in chart
    for path in PROFILES.values():
        values = yaml.safe_load(path.read_text())
        assert "store" not in values and "existingSecret" not in values, path


def test_everything_lives_in_the_release_namespace(rendered):
    for doc in rendered:
        assert doc["metadata"].get("namespace") == "store-test", doc["kind"]
        assert doc["kind"] not in {
            "Namespace",
            "ClusterRole",
            "ClusterRoleBinding",
            "PersistentVolume",
            "StorageClass",
            "Secret",
        }


# --- workloads and policy -----------------------------------------------------


def test_there_is_a_server_a_postgresql_statefulset_and_redis(rendered):
    server = workload(rendered, "Deployment", "-medusa")
    postgres = workload(rendered, "StatefulSet", "-postgresql")
    workload(rendered, "Deployment", "-redis")
    assert server["spec"]["strategy"]["type"] == "Recreate"
    assert postgres["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    [claim] = postgres["spec"]["volumeClaimTemplates"]
    assert parse_memory(claim["spec"]["resources"]["requests"]["storage"]) > 0


def test_every_container_has_requests_and_limits(rendered):
    for name, container in containers(rendered):
        resources = container.get("resources", {})
        for section in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(section, {})), f"{name} lacks {section}"
        assert parse_cpu(resources["requests"]["cpu"]) <= parse_cpu(resources["limits"]["cpu"])
        assert parse_memory(resources["requests"]["memory"]) <= parse_memory(
            resources["limits"]["memory"]
        )


def test_a_store_requests_at_most_half_a_cpu_and_one_gib(rendered):
    cpu, memory = store_requests(rendered)
    assert cpu <= MAX_CPU_REQUEST_M, f"{cpu}m requested"
    assert memory <= MAX_MEMORY_REQUEST, f"{memory / 2**20:.0f}Mi requested"


def test_the_quota_fits_what_the_store_requests(rendered):
    [quota] = of_kind(rendered, "ResourceQuota")
    hard = quota["spec"]["hard"]
    cpu, memory = store_requests(rendered)
    assert parse_cpu(hard["requests.cpu"]) >= cpu
    assert parse_memory(hard["requests.memory"]) >= memory
    assert hard["services.loadbalancers"] == "0" and hard["services.nodeports"] == "0"


def test_pods_satisfy_the_restricted_pod_security_standard(rendered):
    for owner, spec in pod_specs(rendered):
        assert spec["automountServiceAccountToken"] is False, owner
        assert spec["securityContext"]["runAsNonRoot"] is True, owner
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", owner
        assert "hostNetwork" not in spec and "hostPID" not in spec, owner
        for volume in spec.get("volumes", []):
            assert "hostPath" not in volume, owner
    for name, container in containers(rendered):
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["runAsNonRoot"] is True, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        assert not context["capabilities"].get("add"), name
        assert context["seccompProfile"]["type"] == "RuntimeDefault", name
        assert context.get("privileged", False) is False, name


def test_every_image_is_pinned_to_an_exact_tag(rendered):
    images = {container["image"] for _, container in containers(rendered)}
    assert any(image.startswith("postgres:16.") for image in images)
    assert any(image.startswith("redis:7.") for image in images)
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name and tag and tag not in {"latest", "stable"}, image
        assert any(ch.isdigit() for ch in tag), image


def test_no_secret_is_rendered_and_every_secret_comes_from_the_existing_secret(rendered):
    assert not of_kind(rendered, "Secret")
    used_keys = set()
    for owner, spec in chartkit.pod_specs(rendered):
        for container in spec.get("initContainers", []) + spec["containers"]:
            name = f"{owner}/{container['name']}"
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if item["name"].endswith("_FILE"):
                    # A file: a key of a Secret mounted there (the backup
                    # Jobs' database password and object storage keys).
                    ref = secret_file(spec, container, item["value"])
                    assert ref, f"{name}: {item['name']} is not a mounted Secret's key"
                    if ref["name"] == "store-backup-s3":
                        assert ref["key"] in {"access-key", "secret-key"}, name
                        continue
                if ref:
                    assert ref["name"] == "store-credentials", name
                    used_keys.add(ref["key"])
                elif re.search("PASSWORD|SECRET", item["name"]):
                    raise AssertionError(f"{name}: {item['name']} has a literal value")
                else:
                    # Only an interpolated $(VAR) may stand where a password goes.
                    assert not re.search(r"://[^:/@]+:[^$@][^@]*@", item.get("value", "")), name
    # admin-username is not used: Medusa admins log in with their e-mail.
    assert used_keys == SECRET_KEYS


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


def test_a_sentinel_password_never_reaches_the_manifests():
    """The chart has no value for a password at all: whatever the platform
    puts in the Secret stays there. Render with every plausible password key
    set to a sentinel and make sure the schema refuses them rather than
    rendering them."""
    for key in ("adminPassword", "postgresql.password", "medusa.jwtSecret"):
        error = render_error(CHART, [PROFILES["local"], STORE_VALUES], {key: SENTINEL})
        assert SENTINEL not in error.replace(f"{key}={SENTINEL}", "")


def test_the_database_url_is_built_from_the_secret_by_interpolation(rendered):
    server = workload(rendered, "Deployment", "-medusa")
    spec = server["spec"]["template"]["spec"]
    for container in spec["initContainers"] + spec["containers"]:
        env = env_of(container)
        names = list(env)
        assert names.index("DB_PASSWORD") < names.index("DATABASE_URL"), container["name"]
        assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "db-password"
        assert env["DATABASE_URL"]["value"] == (
            "postgres://medusa:$(DB_PASSWORD)@store-test-postgresql:5432/medusa"
        )
        assert env["REDIS_URL"]["value"] == "redis://store-test-redis:6379"
        assert env["JWT_SECRET"]["valueFrom"]["secretKeyRef"]["key"] == "jwt-secret"
        assert env["COOKIE_SECRET"]["valueFrom"]["secretKeyRef"]["key"] == "cookie-secret"
        assert env["STORE_CORS"]["value"] == "http://acme-shop.localtest.me"
        assert env["COOKIE_SECURE"]["value"] == "false"
    setup_env = env_of(spec["initContainers"][0])
    assert setup_env["MEDUSA_ADMIN_EMAIL"]["valueFrom"]["secretKeyRef"]["key"] == "admin-email"
    assert setup_env["MEDUSA_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == (
        "admin-password"
    )
    assert "MEDUSA_ADMIN_PASSWORD" not in env_of(spec["containers"][0])


def test_setup_runs_before_the_server_and_probes_use_health_and_the_storefront(rendered):
    server = workload(rendered, "Deployment", "-medusa")
    spec = server["spec"]["template"]["spec"]
    [setup] = spec["initContainers"]
    assert setup["command"] == ["/app/bin/setup.sh"]
    assert setup["image"] == spec["containers"][0]["image"]
    medusa = spec["containers"][0]
    assert medusa["startupProbe"]["httpGet"]["path"] == "/health"
    startup = medusa["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    assert medusa["livenessProbe"]["httpGet"]["path"] == "/health"
    assert medusa["readinessProbe"]["httpGet"]["path"] == "/"


def test_https_stores_get_secure_cookies_and_a_cert_manager_certificate():
    docs = render_store("vps", TLS_STORE_VALUES)
    [ingress] = of_kind(docs, "Ingress")
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == (
        "letsencrypt-prod"
    )
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["secure-shop.example.com"], "secretName": "store-test-tls"}
    ]
    server = workload(docs, "Deployment", "-medusa")
    env = env_of(server["spec"]["template"]["spec"]["containers"][0])
    assert env["COOKIE_SECURE"]["value"] == "true"
    assert env["ADMIN_CORS"]["value"] == "https://secure-shop.example.com"


def test_the_ingress_serves_the_store_host_with_the_given_class(rendered):
    [ingress] = of_kind(rendered, "Ingress")
    assert ingress["spec"]["ingressClassName"] == "traefik"
    assert "tls" not in ingress["spec"]
    assert "annotations" not in ingress["metadata"]
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == "acme-shop.localtest.me"
    [path] = rule["http"]["paths"]
    assert path["path"] == "/" and path["backend"]["service"]["name"] == "store-test-medusa"


def test_an_empty_class_name_means_the_cluster_default():
    docs = render_store("local", **{"ingress.className": ""})
    [ingress] = of_kind(docs, "Ingress")
    assert "ingressClassName" not in ingress["spec"]


def test_a_limit_range_gives_defaults_and_a_ceiling(rendered):
    [limit_range] = of_kind(rendered, "LimitRange")
    [limits] = limit_range["spec"]["limits"]
    assert limits["type"] == "Container"
    assert {"default", "defaultRequest", "max"} <= set(limits)
    for _, container in containers(rendered):
        assert parse_memory(container["resources"]["limits"]["memory"]) <= parse_memory(
            limits["max"]["memory"]
        )
        assert parse_cpu(container["resources"]["limits"]["cpu"]) <= parse_cpu(limits["max"]["cpu"])


def policies_by_suffix(docs: list[dict]) -> dict[str, dict]:
    return {
        doc["metadata"]["name"].removeprefix("store-test-"): doc["spec"]
        for doc in of_kind(docs, "NetworkPolicy")
    }


def test_network_policies_deny_by_default_and_allow_only_the_needed_paths(rendered):
    policies = policies_by_suffix(rendered)
    deny = policies["default-deny"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny

    dns = policies["allow-dns"]
    assert dns["policyTypes"] == ["Egress"]
    [rule] = dns["egress"]
    assert {p["port"] for p in rule["ports"]} == {53}

    medusa = policies["medusa"]
    [from_rule] = medusa["ingress"]
    [peer] = from_rule["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "kube-system"
    }
    assert [p["port"] for p in from_rule["ports"]] == ["http"]
    egress_ports = sorted(p["port"] for rule in medusa["egress"] for p in rule["ports"])
    assert egress_ports == [5432, 6379]
    for rule in medusa["egress"]:
        for peer in rule["to"]:
            assert set(peer) == {"podSelector"}, "the server may only reach its own pods"

    for component, port, peers in (("postgresql", 5432, ["server", "backup"]),
                                   ("redis", 6379, ["server"])):
        policy = policies[component]
        [rule] = policy["ingress"]
        assert [peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                for peer in rule["from"]] == peers
        assert [p["port"] for p in rule["ports"]] == [port]

    # The backup and restore Jobs: PostgreSQL, and no object storage until
    # the platform fills backup.objectStorage.egress.
    backup = policies["backup"]
    assert "ingress" not in backup and set(backup["policyTypes"]) == {"Ingress", "Egress"}
    [rule] = backup["egress"]
    assert rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
        "postgresql")
    assert rule["ports"] == [{"port": 5432, "protocol": "TCP"}]


def test_network_policies_select_pods_that_exist(rendered):
    pod_labels = [
        spec_owner["spec"]["template"]["metadata"]["labels"]
        for spec_owner in rendered
        if spec_owner.get("kind") in chartkit.POD_KINDS
    ] + [
        cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
        for cron in of_kind(rendered, "CronJob")
    ]
    for name, policy in policies_by_suffix(rendered).items():
        selector = policy["podSelector"].get("matchLabels", {})
        matched = [labels for labels in pod_labels if selector.items() <= labels.items()]
        assert matched, f"NetworkPolicy {name} selects no pod"


# --- schema -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("set_values", "named"),
    [
        ({"store.host": ""}, "host"),
        ({"store.host": "Bad_Host!"}, "host"),
        ({"store.host": "https://acme.example.com/"}, "host"),
        ({"existingSecret": ""}, "existingSecret"),
        ({"store.id": "UPPER"}, "id"),
        ({"store.scheme": "ftp"}, "scheme"),
        ({"store.color": "red"}, "color"),
        ({"ingress.hostname": "x"}, "hostname"),
        ({"ingress.tls.mode": "x"}, "mode"),
        ({"medusa.extra": 1}, "extra"),
        ({"postgresql.storage.size": "-1Gi"}, "size"),
        ({"medusa.resources.requests.cpu": -1}, "cpu"),
        ({"medusa.resources.requests.memory": "-512Mi"}, "memory"),
        ({"redis.resources.limits.memory": "lots"}, "memory"),
        ({"image.tag": "latest"}, "tag"),
        ({"postgresql.image.tag": ""}, "tag"),
    ],
)
def test_the_schema_rejects_bad_values_naming_them(set_values, named):
    error = render_error(CHART, [PROFILES["local"], STORE_VALUES], set_values)
    assert named in error, error


def test_the_schema_rejects_a_missing_host_and_secret():
    for missing in ("host", "secret"):
        values = FIXTURES / f"missing-{missing}.yaml"
        error = render_error(CHART, [PROFILES["local"], values])
        assert ("host" if missing == "host" else "existingSecret") in error, error


def test_the_bare_chart_refuses_to_render_without_store_values():
    error = render_error(CHART)
    assert "host" in error or "id" in error


# --- setup script -------------------------------------------------------------


def test_the_setup_script_is_shellcheck_clean():
    shellcheck = ROOT / ".venv" / "bin" / "shellcheck"
    scripts = [
        ROOT / "images" / "medusa" / "bin" / "setup.sh",
        ROOT / "scripts" / "setup-medusa-app.sh",
        ROOT / "scripts" / "base-image-node.sh",
    ]
    proc = subprocess.run([str(shellcheck), *map(str, scripts)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- what the containers see ----------------------------------------------------

# What the platform's Secret holds, for resolving secretKeyRefs.
SECRETS = {
    "store-credentials": {
        "admin-email": "owner@acme-shop.test",
        "admin-password": "admin-pass",
        "db-password": "db-pass-never-in-a-name",
        "db-root-password": "root-pass",
        "jwt-secret": "jwt",
        "cookie-secret": "cookie",
    },
    "smtp-relay": {"password": "relay-pass"},
}

HOSTILE_NAMES = [
    "$(DB_PASSWORD)",
    "Shop $(DB_PASSWORD) $(JWT_SECRET)",
    # Defined before STORE_NAME, so the kubelet would expand them.
    "$(NODE_ENV) on $(PORT)",
    "$(MEDUSA_WORKER_MODE)",
    "`id`",
    "$(id)",
    "'; rm -rf / #",
    "$$(DB_PASSWORD)",
    "100% off, $5 & $(",
    'Bob\'s "Best" Shop',
    "two\nlines",
    "Café ☕ 🛍️ Shop",
    "متجر الأمل للأزياء",
    "\u202eevil\u202c shop",
]


def medusa_containers(docs: list[dict]) -> dict[str, dict]:
    """The Medusa image's containers by name: setup, medusa (and worker)."""
    found = {}
    for doc in of_kind(docs, "Deployment"):
        if doc["metadata"]["name"].endswith(("-medusa", "-medusa-worker")):
            spec = doc["spec"]["template"]["spec"]
            for container in spec.get("initContainers", []) + spec["containers"]:
                found[container["name"]] = container
    return found


def render_with(tmp_path: Path, values: dict, profile: str = "local") -> list[dict]:
    extra = tmp_path / "extra-values.yaml"
    extra.write_text(yaml.safe_dump(values, allow_unicode=True))
    return render(CHART, [PROFILES[profile], STORE_VALUES, extra])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Cases from Kubernetes' own expansion tests (expand_test.go).
        ("$(VAR_A)", "A"),
        ("___$(VAR_B)___", "___B___"),
        ("$(VAR_A)-$(VAR_A)", "A-A"),
        ("$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),
        ("$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"),
        ("$(UNKNOWN)", "$(UNKNOWN)"),
        ("$(VAR_A", "$(VAR_A"),
        ("$VAR_A", "$VAR_A"),
        ("$()", "$()"),
        ("trailing $", "trailing $"),
        ("$$", "$"),
    ],
)
def test_the_expansion_used_below_follows_the_kubelet(value, expected):
    assert kubelet_expand(value, {"VAR_A": "A", "VAR_B": "B"}) == expected


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_store_name_reaches_medusa_exactly_as_typed(tmp_path, name):
    docs = render_with(tmp_path, {"store": {"name": name}})
    found = medusa_containers(docs)
    assert set(found) == {"setup", "medusa"}
    for container_name, container in found.items():
        env = container_env(container, SECRETS)
        assert env["STORE_NAME"] == name, container_name
        assert SECRETS["store-credentials"]["db-password"] not in env["STORE_NAME"]
        # Nothing else moved: the database URL still gets its password.
        assert env["DATABASE_URL"] == (
            "postgres://medusa:db-pass-never-in-a-name@store-test-postgresql:5432/medusa"
        )


# --- read-only root, uploads ----------------------------------------------------


def test_medusa_runs_on_a_read_only_root_with_only_tmp_and_uploads_writable(rendered):
    server = workload(rendered, "Deployment", "-medusa")
    spec = server["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert volumes["tmp"]["emptyDir"]["sizeLimit"] == "64Mi"
    assert volumes["uploads"]["persistentVolumeClaim"]["claimName"] == "store-test-uploads"
    found = medusa_containers(rendered)
    for name, container in found.items():
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
    mounts = {
        name: {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        for name, container in found.items()
    }
    assert mounts == {
        "setup": {"/tmp": "tmp"},
        "medusa": {"/tmp": "tmp", "/app/static": "uploads"},
    }


def test_uploads_live_on_a_volume_counted_in_the_quota_and_linked_at_the_public_url(rendered):
    [claim] = [c for c in of_kind(rendered, "PersistentVolumeClaim")]
    assert claim["metadata"]["name"] == "store-test-uploads"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    postgres = workload(rendered, "StatefulSet", "-postgresql")
    claims = [claim] + postgres["spec"]["volumeClaimTemplates"]
    [quota] = of_kind(rendered, "ResourceQuota")
    hard = quota["spec"]["hard"]
    storage = sum(parse_memory(c["spec"]["resources"]["requests"]["storage"]) for c in claims)
    assert storage <= parse_memory(hard["requests.storage"])
    assert len(claims) <= int(hard["persistentvolumeclaims"])
    env = container_env(medusa_containers(rendered)["medusa"], SECRETS)
    # medusa-config.ts links uploads at MEDUSA_PUBLIC_URL + /static.
    assert env["MEDUSA_PUBLIC_URL"] == "http://acme-shop.localtest.me"


def test_https_stores_link_uploads_over_https():
    docs = render_store("vps", TLS_STORE_VALUES)
    env = container_env(medusa_containers(docs)["medusa"], SECRETS)
    assert env["MEDUSA_PUBLIC_URL"] == "https://secure-shop.example.com"


# --- SMTP -------------------------------------------------------------------------

SMTP_PORTS_CLOSED = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
]


def smtp_egress(policy: dict) -> list[dict]:
    return [rule for rule in policy.get("egress", []) if any("ipBlock" in p for p in rule["to"])]


def test_without_a_relay_mail_is_only_logged_and_no_port_opens(rendered):
    for name, container in medusa_containers(rendered).items():
        assert not [e for e in container["env"] if e["name"].startswith("SMTP_")], name
    for policy in policies_by_suffix(rendered).values():
        assert not smtp_egress(policy)


def test_a_relay_reaches_the_server_as_env_and_opens_only_its_port(tmp_path):
    docs = render_with(
        tmp_path,
        {
            "smtp": {
                "host": "smtp.relay.example",
                "port": 2525,
                "username": "store-mailer",
                "existingSecret": "smtp-relay",
                "from": "",
                "tls": "starttls",
            }
        },
    )
    found = medusa_containers(docs)
    env = container_env(found["medusa"], SECRETS)
    assert {k: v for k, v in env.items() if k.startswith("SMTP_")} == {
        "SMTP_HOST": "smtp.relay.example",
        "SMTP_PORT": "2525",
        "SMTP_USER": "store-mailer",
        "SMTP_PASSWORD": "relay-pass",
        "SMTP_FROM": "shop@acme-shop.localtest.me",
        "SMTP_TLS": "starttls",
    }
    [password] = [e for e in found["medusa"]["env"] if e["name"] == "SMTP_PASSWORD"]
    assert password["valueFrom"]["secretKeyRef"] == {"name": "smtp-relay", "key": "password"}
    # The setup container sends nothing.
    assert not [e for e in found["setup"]["env"] if e["name"].startswith("SMTP_")]

    policies = policies_by_suffix(docs)
    [rule] = smtp_egress(policies["medusa"])
    assert rule["ports"] == [{"port": 2525, "protocol": "TCP"}]
    [peer] = rule["to"]
    assert peer["ipBlock"] == {"cidr": "0.0.0.0/0", "except": SMTP_PORTS_CLOSED}
    for name, policy in policies.items():
        if name != "medusa":
            assert not smtp_egress(policy), name


def test_a_relay_without_a_password_gets_no_password_variable(tmp_path):
    docs = render_with(
        tmp_path, {"smtp": {"host": "10.1.2.3", "from": "orders@acme.test", "tls": "none"}}
    )
    env = container_env(medusa_containers(docs)["medusa"], SECRETS)
    assert "SMTP_PASSWORD" not in env
    assert env["SMTP_FROM"] == "orders@acme.test"
    assert env["SMTP_TLS"] == "none" and env["SMTP_PORT"] == "587" and env["SMTP_USER"] == ""


@pytest.mark.parametrize(
    ("set_values", "named"),
    [
        ({"smtp.tls": "ssl"}, "tls"),
        ({"smtp.port": 0}, "port"),
        ({"smtp.port": 70000}, "port"),
        ({"smtp.host": "smtp.example.com; rm -rf /"}, "host"),
        ({"smtp.from": "not an address"}, "from"),
        ({"smtp.existingSecret": "Bad_Name"}, "existingSecret"),
        ({"smtp.existingSecret": "smtp-relay"}, "username"),
        ({"smtp.relay": "x"}, "relay"),
        ({"medusa.workerMode": "both"}, "workerMode"),
        ({"uploads.size": "lots"}, "size"),
    ],
)
def test_the_schema_rejects_bad_smtp_uploads_and_mode_values(set_values, named):
    error = render_error(CHART, [PROFILES["local"], STORE_VALUES], set_values)
    assert named in error, error


# --- worker mode ------------------------------------------------------------------


def test_shared_mode_runs_one_process_for_http_and_background_work(rendered):
    assert not [d for d in of_kind(rendered, "Deployment") if d["metadata"]["name"].endswith(
        "-worker")]
    env = container_env(medusa_containers(rendered)["medusa"], SECRETS)
    assert env["MEDUSA_WORKER_MODE"] == "shared" and env["ADMIN_DISABLED"] == "false"


def test_split_mode_adds_a_worker_that_sends_the_mail_next_to_the_server(tmp_path):
    docs = render_with(
        tmp_path, {"medusa": {"workerMode": "split"}, "smtp": {"host": "smtp.relay.example"}}
    )
    found = medusa_containers(docs)
    assert set(found) == {"setup", "medusa", "worker"}
    server_env = container_env(found["medusa"], SECRETS)
    worker_env = container_env(found["worker"], SECRETS)
    assert server_env["MEDUSA_WORKER_MODE"] == "server"
    assert worker_env["MEDUSA_WORKER_MODE"] == "worker" and worker_env["ADMIN_DISABLED"] == "true"
    # Subscribers run in the worker only, so only the worker gets the relay.
    assert "SMTP_HOST" not in server_env and worker_env["SMTP_HOST"] == "smtp.relay.example"
    assert found["worker"]["securityContext"]["readOnlyRootFilesystem"] is True
    assert {m["mountPath"] for m in found["worker"]["volumeMounts"]} == {"/tmp", "/app/static"}

    worker = workload(docs, "Deployment", "-medusa-worker")
    [term] = worker["spec"]["template"]["spec"]["affinity"]["podAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "server"
    assert term["topologyKey"] == "kubernetes.io/hostname"

    policies = policies_by_suffix(docs)
    assert smtp_egress(policies["medusa-worker"]) and not smtp_egress(policies["medusa"])
    assert "ingress" not in policies["medusa-worker"]
    for component, peers in (("postgresql", {"server", "worker", "backup"}),
                             ("redis", {"server", "worker"})):
        [rule] = policies[component]["ingress"]
        allowed = {p["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                   for p in rule["from"]}
        assert allowed == peers, component
    chartkit.validate(docs, K8S_VERSIONS[-1])


# --- Redis ------------------------------------------------------------------------


def test_redis_never_evicts_and_its_ceiling_leaves_half_the_container_free(rendered):
    redis = workload(rendered, "Deployment", "-redis")
    [container] = redis["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    ceiling = args[args.index("--maxmemory") + 1]
    number, unit = re.fullmatch(r"(\d+)(kb|mb|gb)", ceiling).groups()
    ceiling_bytes = int(number) * {"kb": 2**10, "mb": 2**20, "gb": 2**30}[unit]
    assert ceiling_bytes <= parse_memory(container["resources"]["limits"]["memory"]) / 2


# --- chart-testing values ---------------------------------------------------------

CI_VALUES = sorted((ROOT / "charts" / CHART / "ci").glob("*-values.yaml"))


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda path: path.name)
def test_the_ci_values_lint_render_and_fit_their_quota(values):
    chartkit.lint(CHART, [values])
    docs = render(CHART, [values])
    chartkit.validate(docs, K8S_VERSIONS[-1])
    [quota] = of_kind(docs, "ResourceQuota")
    hard = quota["spec"]["hard"]
    cpu, memory = store_requests(docs)
    limit_cpu, limit_memory = store_requests(docs, "limits")
    assert cpu <= parse_cpu(hard["requests.cpu"]), f"{cpu}m requested"
    assert memory <= parse_memory(hard["requests.memory"])
    assert limit_cpu <= parse_cpu(hard["limits.cpu"])
    assert limit_memory <= parse_memory(hard["limits.memory"])



# --- backups and maintenance (issue 12) --------------------------------------------

BACKUP_ENV = {"S3_ENDPOINT", "S3_BUCKET", "S3_REGION", "S3_SSE", "S3_ACCESS_KEY_FILE",
              "S3_SECRET_KEY_FILE", "DB_HOST", "DB_PORT", "DB_NAME", "DB_USER",
              "DB_PASSWORD_FILE", "FILES_DIR"}


def backup_template(docs: list[dict], action: str) -> tuple[dict, dict]:
    cron = workload(docs, "CronJob", f"-{action}")
    return cron, cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_the_backup_scripts_ship_in_a_configmap_exactly_as_in_files(rendered):
    [configmap] = [c for c in of_kind(rendered, "ConfigMap")
                   if c["metadata"]["name"] == "store-test-backup"]
    for name in ("backup.sh", "restore.sh", "backup-common.sh"):
        assert configmap["data"][name] == (ROOT / "charts" / CHART / "files" / name).read_text()


@pytest.mark.parametrize("action", ["backup", "restore"])
def test_backup_and_restore_are_suspended_cronjob_templates_of_one_try(rendered, action):
    cron, pod = backup_template(rendered, action)
    assert cron["spec"]["suspend"] is True
    job = cron["spec"]["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0 and job["activeDeadlineSeconds"] == 3600
    assert job["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "backup"
    assert pod["restartPolicy"] == "Never"
    [container] = pod["containers"]
    assert container["name"] == action
    assert container["command"] == ["bash", f"/backup/{action}.sh"]
    platform = yaml.safe_load((ROOT / "charts" / "platform" / "values.yaml").read_text())
    assert container["image"] == f"{platform['image']['repository']}:{platform['image']['tag']}"
    assert pod["securityContext"]["runAsUser"] == 1000  # Medusa's uid owns the uploads
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert set(env) >= BACKUP_ENV and "BACKUP_PREFIX" not in env
    assert (env["DB_HOST"], env["DB_NAME"], env["DB_USER"]) == (
        "store-test-postgresql", "medusa", "medusa")
    for variable in ("DB_PASSWORD_FILE", "S3_ACCESS_KEY_FILE", "S3_SECRET_KEY_FILE"):
        assert secret_file(pod, container, env[variable]), variable
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts[env["FILES_DIR"]]["readOnly"] is (action == "backup")
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts[env["FILES_DIR"]]["name"]]["persistentVolumeClaim"]["claimName"] == (
        "store-test-uploads")
    if action == "backup":
        [term] = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "server"
    else:
        assert "affinity" not in pod


def test_backup_pods_reach_the_object_storage_only_where_the_platform_says(tmp_path):
    from provisioning.tests.netpol import Address, Network, pods_of

    object_storage, elsewhere = Address("s3", "203.0.113.10"), Address("web", "93.184.216.34")
    docs = render_with(tmp_path, {"backup": {"objectStorage": {
        "egress": [{"cidr": "203.0.113.0/28", "port": 9000}]}}})
    net = Network(of_kind(docs, "NetworkPolicy"), "store-test", {"store-test": {}})
    pods = {p.labels.get("app.kubernetes.io/component"): p for p in pods_of(docs, "store-test")}
    assert net.allows(pods["backup"], object_storage, 9000)
    assert net.allows(pods["backup"], pods["postgresql"], 5432)
    assert not net.allows(pods["backup"], pods["redis"], 6379)
    assert not net.allows(pods["backup"], object_storage, 443)
    assert not net.allows(pods["backup"], elsewhere, 9000)
    assert not net.allows(pods["server"], object_storage, 9000)


@pytest.mark.parametrize("mode", ["shared", "split"])
def test_maintenance_stops_server_and_worker_keeps_the_databases_and_shows_the_paused_page(
        tmp_path, mode):
    backend = "storeplatform-web.storeplatform.svc.cluster.local"
    docs = render_with(tmp_path, {"maintenance": True, "medusa": {"workerMode": mode},
                                  "paused": {"backend": backend, "port": 8080}})
    replicas = {d["metadata"]["name"]: d["spec"]["replicas"]
                for d in of_kind(docs, "Deployment") + of_kind(docs, "StatefulSet")}
    assert replicas == {"store-test-medusa": 0, "store-test-postgresql": 1,
                        "store-test-redis": 1,
                        **({"store-test-medusa-worker": 0} if mode == "split" else {})}
    paused = workload(docs, "Service", "-paused")
    assert paused["spec"]["externalName"] == backend
    [ingress] = of_kind(docs, "Ingress")
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == (
        "store-test-paused")
    assert "affinity" not in backup_template(docs, "backup")[1]
    chartkit.validate(docs, K8S_VERSIONS[-1])


def test_a_suspended_split_store_stops_its_worker_too(tmp_path):
    docs = render_with(tmp_path, {"suspended": True, "medusa": {"workerMode": "split"}})
    assert workload(docs, "Deployment", "-medusa-worker")["spec"]["replicas"] == 0


@pytest.mark.parametrize(
    ("set_values", "named"),
    [
        ({"backup.objectStorage.sse": "rot13"}, "sse"),
        ({"backup.objectStorage.bucket": "Bad_Bucket"}, "bucket"),
        ({"backup.existingSecret": "Not A Name"}, "existingSecret"),
        ({"backup.resources.limits.memory": "lots"}, "memory"),
        ({"maintenance": "yes"}, "maintenance"),
    ],
)
def test_the_schema_rejects_bad_backup_values_naming_them(set_values, named):
    error = render_error(CHART, [PROFILES["local"], STORE_VALUES], set_values)
    assert named in error, error
