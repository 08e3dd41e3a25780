"""The platform's own image, built from the root Dockerfile unchanged and run
the way charts/platform runs it (issue 17).

The image is built with podman on a local stand-in for its official Python
base (scripts/base-image-python.sh; no registry is reachable here). Each
container is started from the chart's own rendering by the real helm with the
production profile (deploy/values/platform-vps.yaml): its command and args,
its environment (the ConfigMap, the Secrets an operator creates, $(VAR)
expansion as Kubernetes does it), its security context (uid 10001, read-only
root filesystem, all capabilities dropped, no privilege escalation) and its
only writable volume, the emptyDir at /tmp, as a tmpfs.

What differs from a cluster, and why:
- PostgreSQL and Redis are the chart's "external" variant (their URLs in
  Secrets), pointing at real servers on loopback: the test's PostgreSQL (a
  database of its own) and a Redis of its own. Containers share the host's
  network (`--network host`) to reach them, so the web's --bind and the
  worker's metrics port are moved to free ports.
- The Kubernetes API is provisioning/tests/fakes (the fake API server and
  ingress in this process). The web and worker containers get a kubeconfig
  for it instead of a ServiceAccount, and the worker's HELM_BIN is the fake
  helm, mounted in and run by the image's own Python, which renders the store
  charts with the image's real helm (FAKE_HELM_REAL_BIN).

Build and run times are in docs/benchmarks.md ("The platform image").
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from provisioning.tests import chartkit
from storeplatform import devservices
from stores import constants as c

pytestmark = pytest.mark.slow

ROOT = chartkit.ROOT
IMAGE = "localhost/storeplatform:image-test"
PRODUCTION_PROFILE = chartkit.DEPLOY_VALUES / "platform-vps.yaml"
RELEASE = "storeplatform"
# The chart's variant with the database and Redis outside the cluster.
EXTERNAL_SERVICES = {
    "postgresql.enabled": False,
    "externalDatabase.existingSecret": "platform-database",
    "redis.enabled": False,
    "externalRedis.existingSecret": "platform-redis",
}
PLATFORM_HOST = "platform.example.com"
# What this machine's podman needs (/work/shared/ENVIRONMENT.md): runc, not
# crun, and explicit rlimits.
RUNTIME_FLAGS = ["--runtime", "runc", "--ulimit", "nofile=20000:20000",
                 "--ulimit", "nproc=4096:4096"]
FAKES = ROOT / "provisioning" / "tests" / "fakes"


def required(reason: str):
    """Skip where the machine lacks a tool, except in CI, where it must have it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI must run this test)")
    pytest.skip(reason)


def run(args: list[str], timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture(scope="module")
def platform_image() -> str:
    missing = [tool for tool in ("podman", "runc") if not shutil.which(tool)]
    if missing:
        required(f"{' and '.join(missing)} missing: apt-get install -y podman runc debootstrap")
    base = run(["bash", "scripts/base-image-python.sh"], cwd=ROOT, timeout=1200)
    if base.returncode != 0:
        required(f"the Python base image could not be built: {base.stderr.strip()[-2000:]}")
    # The layer cache makes a rebuild with unchanged requirements quick.
    build = run(["podman", "build", *RUNTIME_FLAGS, "--network", "host", "-t", IMAGE, "."],
                cwd=ROOT, timeout=1800)
    assert build.returncode == 0, f"podman build failed:\n{build.stdout[-3000:]}{build.stderr}"
    return IMAGE


# --- the chart's rendering, as podman arguments -------------------------------


def render_chart(**set_values) -> list[dict]:
    return chartkit.render("platform", [PRODUCTION_PROFILE], {**EXTERNAL_SERVICES, **set_values},
                           release=RELEASE, namespace="storeplatform")


def workload(docs: list[dict], kind: str, name: str) -> dict:
    """The pod spec of a Deployment or Job."""
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc["spec"]["template"]["spec"]


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of env values, command and args."""
    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", replace, text)


def container_env(container: dict, config_maps: dict, secret_data: dict, pod_name: str) -> dict:
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = expand(item["value"], env)
            continue
        source = item["valueFrom"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            data = secret_data.get(ref["name"], {})
            if ref["key"] in data:
                env[item["name"]] = data[ref["key"]]
            else:
                assert ref.get("optional"), f"Secret {ref['name']} lacks {ref['key']}"
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[item["name"]] = pod_name
        else:
            raise AssertionError(f"this test cannot provide {item}")
    return env


def security_flags(pod: dict, container: dict) -> list[str]:
    """The pod's and container's securityContext and volumes, for podman."""
    context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    assert context["runAsNonRoot"] is True
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}  # podman's default
    assert not context.get("capabilities", {}).get("add")
    flags = ["--user", f"{context['runAsUser']}:{context['runAsGroup']}"]
    if context.get("readOnlyRootFilesystem"):
        # Only the volumes below are writable (podman would add its own tmpfs).
        flags += ["--read-only", "--read-only-tmpfs=false"]
    if context.get("capabilities", {}).get("drop"):
        flags += ["--cap-drop", ",".join(context["capabilities"]["drop"])]
    if context.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        assert set(volume) == {"name", "emptyDir"}, f"this test cannot mount {volume}"
        size = volume["emptyDir"].get("sizeLimit", "64Mi").replace("Mi", "m").replace("Gi", "g")
        flags += ["--tmpfs", f"{mount['mountPath']}:rw,size={size},mode=1777"]
    return flags


class Containers:
    """The containers of one test, started with podman, removed at the end."""

    def __init__(self, image: str, workdir: Path, docs: list[dict], secret_data: dict):
        self.image = image
        self.workdir = workdir
        self.docs = docs
        self.config_maps = {d["metadata"]["name"]: d.get("data", {})
                            for d in docs if d["kind"] == "ConfigMap"}
        self.secret_data = secret_data
        self.names: list[str] = []
        self.prefix = f"sp-image-{uuid.uuid4().hex[:6]}"

    def args(self, pod: dict, container: dict, name: str, overrides: dict,
             extra_flags: list[str], argv: list[str] | None) -> list[str]:
        env = container_env(container, self.config_maps, self.secret_data, name)
        env.update(overrides)
        # Secrets travel in a file only root can read, never on a command line.
        env_file = self.workdir / f"{name}.env"
        assert not any("\n" in value for value in env.values())
        env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
        env_file.chmod(0o600)
        if argv is None:
            argv = [expand(arg, env) for arg in container.get("command", []) +
                    container.get("args", [])]
        return ["podman", "run", *RUNTIME_FLAGS, "--network", "host", "--name", name,
                "--env-file", str(env_file), *security_flags(pod, container), *extra_flags,
                self.image, *argv]

    def run(self, pod: dict, container: dict, role: str, overrides: dict | None = None,
            extra_flags: list[str] = (), argv: list[str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
        """Run to completion, like a Job or an init container."""
        name = f"{self.prefix}-{role}"
        self.names.append(name)
        return run(self.args(pod, container, name, overrides or {}, list(extra_flags), argv),
                   timeout=timeout)

    def start(self, pod: dict, container: dict, role: str, overrides: dict | None = None,
              extra_flags: list[str] = ()) -> str:
        name = f"{self.prefix}-{role}"
        self.names.append(name)
        args = self.args(pod, container, name, overrides or {}, list(extra_flags), None)
        args.insert(2, "--detach")
        started = run(args, timeout=300)
        assert started.returncode == 0, started.stderr
        return name

    def running(self, name: str) -> bool:
        state = run(["podman", "inspect", "--format", "{{.State.Running}}", name], timeout=120)
        return state.stdout.strip() == "true"

    def logs(self, name: str) -> str:
        proc = run(["podman", "logs", name], timeout=120)
        return proc.stdout + proc.stderr

    def all_logs(self) -> str:
        return "\n".join(f"--- {name}\n{self.logs(name)[-3000:]}" for name in self.names)

    def remove(self) -> None:
        # Never raise here: it would hide why the test failed.
        for name in self.names:
            try:
                run(["podman", "rm", "--force", "--time", "10", name], timeout=300)
            except subprocess.TimeoutExpired:
                warnings.warn(f"podman rm {name} timed out; remove it by hand", stacklevel=1)


# --- the test ------------------------------------------------------------------


def platform_secrets(database_url: str, redis_url: str) -> dict[str, dict[str, str]]:
    """The Secrets an operator creates before installing (docs/vps-runbook.md)."""
    return {
        "storeplatform-secrets": {
            "django-secret-key": secrets.token_urlsafe(50),
            "store-credentials-key": secrets.token_urlsafe(32),
            "metrics-token": secrets.token_urlsafe(16),
        },
        "platform-database": {"database-url": database_url},
        "platform-redis": {"redis-url": redis_url},
    }


def test_check_deploy_is_clean_in_the_image_with_the_production_profile(platform_image,
                                                                        tmp_path):
    docs = render_chart()
    web = workload(docs, "Deployment", f"{RELEASE}-web")
    unused = platform_secrets("postgresql://unused@127.0.0.1:1/unused", "redis://127.0.0.1:1/0")
    containers = Containers(platform_image, tmp_path, docs, unused)
    try:
        proc = containers.run(web, web["containers"][0], "check",
                              argv=["python", "manage.py", "check", "--deploy",
                                    "--fail-level", "WARNING"])
    finally:
        containers.remove()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "System check identified no issues" in proc.stdout
    assert proc.stderr.strip() == ""


@pytest.fixture
def postgres_database() -> str:
    """A fresh database on the test run's PostgreSQL, dropped afterwards."""
    import psycopg

    server = os.environ["DATABASE_URL"]
    name = f"sp_image_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def own_redis(tmp_path):
    """A Redis of this test's own: the suite's Celery workers share the other one."""
    redis = devservices.start_redis(tmp_path / "redis")
    yield redis.url
    redis.stop()


@pytest.fixture
def fake_cluster(tmp_path):
    """The fake API server and ingress, and what the worker mounts to use them."""
    from provisioning.tests.fakes.kubeapi import FakeKubernetes

    fake = FakeKubernetes().start()
    mount = tmp_path / "fake"
    mount.mkdir(mode=0o755)
    fake.write_kubeconfig(mount / "kubeconfig")
    shutil.copy(FAKES / "fake_helm.py", mount / "fake_helm.py")
    # The fake helm, run by the image's own Python.
    (mount / "helm").write_text('#!/bin/sh\nexec /opt/venv/bin/python /fake/fake_helm.py "$@"\n')
    for path, mode in ((mount, 0o755), (mount / "helm", 0o755),
                       (mount / "fake_helm.py", 0o644), (mount / "kubeconfig", 0o644)):
        path.chmod(mode)
    yield fake, mount
    fake.stop()


class Api:
    """The web container's API, reached as the ingress reaches it (HTTPS ended
    at the proxy, which says so in X-Forwarded-Proto)."""

    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"
        self.token = ""

    def call(self, method: str, path: str, body: dict | None = None,
             host: str = PLATFORM_HOST, authorization: str = "") -> tuple[int, dict, dict]:
        headers = {"Host": host, "X-Forwarded-Proto": "https", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if authorization or self.token:
            headers["Authorization"] = authorization or f"Token {self.token}"
        request = urllib.request.Request(self.base + path, method=method, headers=headers,
                                         data=json.dumps(body).encode() if body else None)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                text, status, got = response.read().decode(), response.status, response.headers
        except urllib.error.HTTPError as error:
            text, status, got = error.read().decode(), error.code, error.headers
        try:
            payload = json.loads(text) if text else {}
        except json.JSONDecodeError:
            payload = {"text": text[:500]}
        return status, payload, dict(got)


def wait_until(predicate, timeout: float, message) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    pytest.fail(message())


def test_the_image_migrates_then_web_worker_and_beat_take_a_store_to_ready(
    platform_image, tmp_path, postgres_database, own_redis, fake_cluster
):
    fake, fake_mount = fake_cluster
    # Stores over plain HTTP: the fake ingress serves HTTPS only with a test
    # CA (provisioning/tests/test_https_stores.py covers that path); this
    # test is about the image.
    docs = render_chart(**{"stores.ingressProbeUrl": fake.ingress_url,
                           "stores.scheme": "http", "stores.tlsMode": "off"})
    migrate_job = next(d for d in docs if d["kind"] == "Job")["spec"]["template"]["spec"]
    web = workload(docs, "Deployment", f"{RELEASE}-web")
    worker = workload(docs, "Deployment", f"{RELEASE}-worker")
    beat = workload(docs, "Deployment", f"{RELEASE}-beat")
    web_port, metrics_port = devservices.free_port(), devservices.free_port()
    cluster_access = {"KUBECONFIG": "/fake/kubeconfig"}
    mount_fakes = ["--volume", f"{fake_mount}:/fake:ro"]
    operator_secrets = platform_secrets(postgres_database, own_redis)
    containers = Containers(platform_image, tmp_path, docs, operator_secrets)
    api = Api(web_port)
    try:
        migrate = containers.run(migrate_job, migrate_job["containers"][0], "migrate")
        assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
        assert "Applying stores.0001_initial... OK" in migrate.stdout
        # The app pods' init container lets them start once migrations are in.
        waited = containers.run(web, web["initContainers"][0], "wait-for-migrations")
        assert waited.returncode == 0, waited.stdout + waited.stderr

        web_container = dict(web["containers"][0])
        web_container["args"] = [f"--bind=127.0.0.1:{web_port}" if arg.startswith("--bind=")
                                 else arg for arg in web_container["args"]]
        web_name = containers.start(web, web_container, "web", cluster_access, mount_fakes)
        worker_name = containers.start(worker, worker["containers"][0], "worker", {
            **cluster_access, "HELM_BIN": "/fake/helm",
            "FAKE_HELM_REAL_BIN": "/usr/local/bin/helm",
            "WORKER_METRICS_PORT": str(metrics_port),
        }, mount_fakes)
        beat_name = containers.start(beat, beat["containers"][0], "beat")

        # The chart's readiness probe: Host: localhost, database, Redis and helm.
        def ready() -> bool:
            try:
                return api.call("GET", "/readyz", host="localhost")[0] == 200
            except OSError:
                return False

        wait_until(ready, 240, lambda: f"web never ready:\n{containers.all_logs()}")
        status, checks, _ = api.call("GET", "/readyz", host="localhost")
        assert "detail" not in checks["checks"]["helm"], checks  # details are for operators
        metrics_token = operator_secrets["storeplatform-secrets"]["metrics-token"]
        status, checks, _ = api.call("GET", "/readyz", host="localhost",
                                     authorization=f"Bearer {metrics_token}")
        assert checks["checks"]["helm"]["detail"].startswith("v4."), checks

        # The operator's account, made the way an operator would (exec in the
        # pod). The password reaches podman through its environment, never
        # its command line (which a failure would print).
        password = secrets.token_urlsafe(16)
        made = run(["podman", "exec", "--env", "DJANGO_SUPERUSER_PASSWORD", web_name,
                    "python", "manage.py", "createsuperuser", "--noinput",
                    "--username", "owner", "--email", "owner@example.com"], timeout=300,
                   env={**os.environ, "DJANGO_SUPERUSER_PASSWORD": password})
        assert made.returncode == 0, made.stderr
        status, body, _ = api.call("POST", "/api/auth/token/",
                                   {"username": "owner", "password": password})
        assert status == 200, body
        api.token = body["token"]

        status, store, _ = api.call("POST", "/api/stores/",
                                    {"name": "Image Shop", "engine": "woocommerce"})
        assert status == 202, store

        def settled() -> bool:
            return api.call("GET", f"/api/stores/{store['id']}/")[1]["status"] in (
                "ready", "failed")

        wait_until(settled, 400, lambda: f"store never settled:\n{containers.all_logs()}")
        status, store, _ = api.call("GET", f"/api/stores/{store['id']}/")
        assert store["status"] == "ready", f"{store}\n{containers.all_logs()}"
        events = api.call("GET", f"/api/stores/{store['id']}/events/")[1]["results"]
        statuses = [e["status_to"] for e in events if e["kind"] == c.EVENT_STATUS]
        assert statuses == ["requested", "provisioning", "ready"], events
        namespaces = [ns["metadata"]["name"] for ns in
                      fake.namespaces("app.kubernetes.io/managed-by=storeplatform")]
        assert namespaces == [f"store-{store['id']}"]

        # The worker's liveness probe, exactly as the chart runs it.
        probe = worker["containers"][0]["livenessProbe"]["exec"]["command"]
        alive = run(["podman", "exec", worker_name, *probe], timeout=300)
        assert alive.returncode == 0, alive.stdout + alive.stderr
        # Beat started and keeps running (it exited at start before issue 17).
        assert containers.running(beat_name), containers.logs(beat_name)
        assert "beat: Starting..." in containers.logs(beat_name)
        assert containers.running(worker_name) and containers.running(web_name)

        # The production headers, from the image.
        status, _, headers = api.call("GET", "/login/")
        assert status == 200
        assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert "script-src 'self'" in headers["Content-Security-Policy"]
    finally:
        containers.remove()
