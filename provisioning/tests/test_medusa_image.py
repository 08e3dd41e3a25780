"""The Medusa image itself, built with podman and run the way the chart runs it.

test_medusa_app.py proves the app; this proves the image: files owned by
root, a read-only root filesystem and uid 1000 are exactly what the native
run cannot show (there the files belong to the user running Medusa, which is
how `db:migrate` creating folders inside node_modules went unnoticed).

- The base `node:22.23.5-bookworm-slim` cannot be pulled here, so
  scripts/base-image-node.sh assembles a stand-in with that exact name (once;
  podman keeps it). images/medusa/Dockerfile is built unchanged, with npm's
  cache (~/.npm) mounted into the build so a rebuild downloads nothing.
- Real PostgreSQL 16, Redis and an SMTP server (aiosmtpd) run on loopback;
  the containers share the host's network to reach them (Medusa needs TCP).
- Both containers get the chart's security context: uid/gid 1000, a
  read-only root filesystem, all capabilities dropped, no-new-privileges,
  and writable storage only where the chart mounts volumes (/tmp and the
  uploads volume at /app/static). Their command and environment come from
  ``helm template`` of charts/medusa (secrets filled in, ``$(VAR)`` expanded
  as the kubelet does); only the service host names become loopback
  addresses and PORT a free port. The store keeps the chart's public URL:
  requests carry its Host header, as the ingress would send them.

Then: the init container's command (`/app/bin/setup.sh`) migrates, seeds and
creates the admin; the server's command starts Medusa; a product image is
uploaded through the Admin API and fetched from its public URL; an order
placed through the Store API shows up in the Admin API and its confirmation
arrives at the SMTP server; a second server without a relay (the chart's
default) only logs the confirmation.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from provisioning.tests.chartkit import ROOT
from provisioning.tests.medusakit import (
    APP_DIR,
    PUBLIC_URL,
    RELEASE,
    SECRET,
    STORE_NAME,
    SmtpSink,
    StoreApi,
    assert_order_confirmation,
    container_env,
    missing,
    rendered_containers,
)
from storeplatform import devservices

pytestmark = pytest.mark.slow

BASE_IMAGE_SCRIPT = ROOT / "scripts" / "base-image-node.sh"
# runc, not the default crun, and explicit rlimits: what works on these
# machines (/work/shared/ENVIRONMENT.md, "What is NOT here").
PODMAN_RUNTIME = [
    "--runtime", "runc", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096",
]
BUILD_TIMEOUT = 45 * 60
# A 1x1 PNG, like a product image from the admin dashboard.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082"
)


def podman(*args: str, timeout: float = 600, env: dict | None = None, check: bool = True):
    proc = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, env=env
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args[:3])} ... failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
        )
    return proc


CONTEXT_LABEL = "org.storeplatform.build-context"


def build_context_digest(base_image: str) -> str:
    """A digest of what the build reads: every file of images/medusa except
    the installed and built trees (.dockerignore keeps those out too), and
    the base image's id."""
    digest = hashlib.sha256(podman("image", "inspect", "--format", "{{.Id}}", base_image).stdout
                            .strip().encode())
    for path in sorted(APP_DIR.rglob("*")):
        relative = path.relative_to(APP_DIR)
        if relative.parts[0] in {"node_modules", ".medusa"} or not path.is_file():
            continue
        digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def build_image(image: str, log_path: Path, timings: dict[str, float]) -> None:
    """Base stand-in (once), then `podman build images/medusa` as users
    build it. When the image exists and was built from the same files (a
    label on it says so), the build is skipped: even a fully cached podman
    build spends minutes checksumming node_modules for its COPY steps. A
    lock keeps parallel test workers from building twice."""
    lock_path = APP_DIR / ".medusa" / "image-build.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = time.monotonic()
        base = subprocess.run(
            ["bash", str(BASE_IMAGE_SCRIPT)], capture_output=True, text=True, timeout=1800
        )
        if base.returncode != 0:
            if os.geteuid() != 0 or not shutil.which("debootstrap"):
                missing(f"the Node base image could not be built: {base.stderr.strip()}")
            raise AssertionError(f"base-image-node.sh failed:\n{base.stdout}\n{base.stderr}")
        timings["base image"] = time.monotonic() - started

        base_image = subprocess.run(
            ["bash", str(BASE_IMAGE_SCRIPT), "--print-tag"], capture_output=True, text=True
        ).stdout.strip()
        context = build_context_digest(base_image)
        built = podman("image", "inspect", "--format", f'{{{{index .Labels "{CONTEXT_LABEL}"}}}}',
                       image, check=False)
        if built.returncode == 0 and built.stdout.strip() == context:
            log_path.write_text(f"{image} was built from these files already ({context})\n")
            timings["image build (unchanged, skipped)"] = 0.0
            return

        npm_cache = Path.home() / ".npm"
        npm_cache.mkdir(exist_ok=True)
        started = time.monotonic()
        with open(log_path, "w") as log:
            proc = subprocess.run(
                ["podman", "build", *PODMAN_RUNTIME, "--network", "host", "--pull=never",
                 # npm in the build stages runs as root: its cache is /root/.npm.
                 "--volume", f"{npm_cache}:/root/.npm",
                 "--label", f"{CONTEXT_LABEL}={context}",
                 "-t", image, str(APP_DIR)],
                stdout=log, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT,
            )
        timings["image build"] = time.monotonic() - started
        assert proc.returncode == 0, f"podman build failed:\n{log_path.read_text()[-5000:]}"


@dataclass
class RunningImage(StoreApi):
    image: str = ""
    workdir: Path = Path()
    uploads: Path = Path()
    smtp: SmtpSink | None = None
    redis_port: int = 0
    # In-cluster addresses -> loopback ones, for container_env().
    replacements: dict[str, str] = field(default_factory=dict)
    setup_output: str = ""
    server_name: str = ""
    server_pid: int = 0
    figures: dict[str, str] = field(default_factory=dict)


def writable_dir(path: Path) -> Path:
    """A volume uid 1000 can write, as the chart's fsGroup 1000 makes it."""
    path.mkdir(parents=True)
    if os.geteuid() == 0:
        os.chown(path, 1000, 1000)
    else:
        path.chmod(0o777)  # rootless podman maps uid 1000 to a subordinate id
    return path


def run_args(container: dict, run: RunningImage, env: dict[str, str], mounts: dict[str, Path]):
    """`podman run` arguments for one of the chart's containers: its security
    context, its volumes, its environment (passed by name, so any value goes
    through untouched) and its command."""
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["capabilities"]["drop"] == ["ALL"]
    assert context["allowPrivilegeEscalation"] is False
    chart_mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
    assert chart_mounts == set(mounts), f"the chart mounts {chart_mounts}"
    args = [
        *PODMAN_RUNTIME, "--network", "host",
        "--user", "1000:1000", "--read-only", "--read-only-tmpfs=false",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
    ]
    for target, source in mounts.items():
        args += ["--volume", f"{source}:{target}"]
    for name in env:
        args += ["--env", name]
    command = json.dumps(container["command"])
    return [*args, "--entrypoint", command, run.image, *container.get("args", [])]


def start_server(run: RunningImage, api: StoreApi, container: dict, env: dict[str, str],
                 mounts: dict[str, Path]) -> str:
    """The chart's server container, detached; returns its name once
    ``api`` gets an answer from /health."""
    name = f"medusa-image-test-{uuid.uuid4().hex[:8]}"
    podman(
        "run", "--detach", "--name", name, *run_args(container, run, env, mounts),
        env={**os.environ, **env},
    )

    def logs() -> str:
        proc = podman("logs", name, check=False)
        return proc.stdout + proc.stderr

    def exited() -> str | None:
        state = podman("inspect", "--format", "{{.State.Running}}", name).stdout
        return None if state.strip() == "true" else f"the server exited:\n{logs()[-4000:]}"

    try:
        api.wait_until_healthy(exited)
    except AssertionError as error:
        stop_server(name, run.workdir / f"{name}.log")
        raise AssertionError(f"{error}\n{logs()[-4000:]}") from None
    return name


def stop_server(name: str, log_path: Path) -> None:
    logs = podman("logs", name, check=False)
    log_path.write_text(logs.stdout + logs.stderr)
    podman("stop", "--time", "30", name, check=False, timeout=90)
    podman("rm", "--force", name, check=False)


@pytest.fixture(scope="module")
def medusa_image(tmp_path_factory) -> Iterator[RunningImage]:
    if not shutil.which("podman"):
        missing("podman is not installed (apt-get install podman runc debootstrap)")
    workdir = tmp_path_factory.mktemp("medusa-image")
    timings: dict[str, float] = {}
    services: list = []
    run: RunningImage | None = None
    try:
        postgres = devservices.start_postgres(workdir / "postgres", fresh=True)
        services.append(postgres)
        redis = devservices.start_redis(workdir / "redis")
        services.append(redis)
        create_app_database(postgres)
        smtp = SmtpSink().start()
        services.append(smtp)

        containers = rendered_containers(
            {"smtp": {"host": smtp.hostname, "port": smtp.port, "tls": "none"}}, workdir
        )
        image = containers["medusa"]["image"]
        build_image(image, workdir / "build.log", timings)

        port = devservices.free_port()
        replacements = {
            f"{RELEASE}-postgresql:5432": f"127.0.0.1:{postgres.port}",
            f"{RELEASE}-redis:6379": f"127.0.0.1:{redis.port}",
        }
        run = RunningImage(
            base_url=f"http://127.0.0.1:{port}",
            host=PUBLIC_URL.removeprefix("http://"),
            image=image,
            workdir=workdir,
            uploads=writable_dir(workdir / "uploads"),
            smtp=smtp,
            redis_port=redis.port,
            replacements=replacements,
            timings=timings,
        )
        tmp = writable_dir(workdir / "tmp")

        setup_env = container_env(containers["setup"], replacements) | {"PORT": str(port)}
        started = time.monotonic()
        setup = podman(
            "run", "--rm", *run_args(containers["setup"], run, setup_env, {"/tmp": tmp}),
            env={**os.environ, **setup_env}, timeout=900, check=False,
        )
        timings["setup (init container)"] = time.monotonic() - started
        run.setup_output = setup.stdout + setup.stderr
        (workdir / "setup.log").write_text(run.setup_output)
        assert setup.returncode == 0, f"/app/bin/setup.sh failed:\n{run.setup_output[-5000:]}"

        server_env = container_env(containers["medusa"], replacements) | {"PORT": str(port)}
        started = time.monotonic()
        run.server_name = start_server(
            run, run, containers["medusa"], server_env, {"/tmp": tmp, "/app/static": run.uploads}
        )
        timings["server start"] = time.monotonic() - started
        run.server_pid = int(
            podman("inspect", "--format", "{{.State.Pid}}", run.server_name).stdout.strip()
        )
        yield run
    finally:
        if run is not None and run.server_name:
            stop_server(run.server_name, workdir / "server.log")
        if run is not None:
            print(f"\nmedusa image timings: { {k: round(v, 1) for k, v in timings.items()} }")
            print(f"medusa image figures: {run.figures}")
            print(f"logs in {workdir}")
        for service in reversed(services):
            service.stop()


def create_app_database(postgres: devservices.Service) -> None:
    """The role and database the chart's PostgreSQL init script creates."""
    import psycopg

    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE medusa LOGIN PASSWORD '{SECRET['db-password']}'")
        conn.execute("CREATE DATABASE medusa OWNER medusa")


def process_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


# --- the tests ------------------------------------------------------------------


def test_the_setup_step_migrates_seeds_and_creates_the_admin_as_uid_1000(medusa_image):
    output = medusa_image.setup_output
    assert "setup: migrations applied" in output
    assert "setup: seed done" in output and "setup: admin user created" in output
    assert "EACCES" not in output and "EROFS" not in output


def test_the_server_runs_as_uid_1000_and_serves_the_shop(medusa_image):
    status = process_status(medusa_image.server_pid)
    assert status["Uid"].split()[:2] == ["1000", "1000"]
    assert status["CapEff"].strip() == "0000000000000000"
    assert status["NoNewPrivs"].strip() == "1"
    medusa_image.figures["server RSS after start"] = status["VmRSS"].strip()

    page = medusa_image.request("GET", "/")
    assert page.status_code == 200 and "<title>" in page.text
    assert medusa_image.request("GET", "/app/").status_code == 200
    config = medusa_image.request("GET", "/storefront/config").json()
    assert config["store_name"] == STORE_NAME


def test_an_uploaded_product_image_is_served_at_the_stores_public_url(medusa_image):
    uploaded = medusa_image.upload("shirt.png", PNG, "image/png")
    assert uploaded["url"] == f"{PUBLIC_URL}/static/{uploaded['id']}"
    response = medusa_image.fetch_public(uploaded["url"])
    assert response.status_code == 200 and response.content == PNG
    # It landed on the uploads volume, not in the image.
    stored = medusa_image.uploads / uploaded["id"]
    assert stored.read_bytes() == PNG and stored.stat().st_uid == 1000


def test_an_order_reaches_the_admin_api_and_its_confirmation_the_relay(medusa_image):
    order = medusa_image.place_order("image-shopper@example.com")
    assert order["id"] in {o["id"] for o in medusa_image.admin_orders()}

    mail = medusa_image.smtp.wait_for("image-shopper@example.com")
    assert_order_confirmation(mail, order, sender="shop@acme-shop.localtest.me")

    import redis

    info = redis.Redis(port=medusa_image.redis_port).info("memory")
    medusa_image.figures["redis used_memory_peak"] = info["used_memory_peak_human"]
    medusa_image.figures["server RSS after an order"] = process_status(
        medusa_image.server_pid
    )["VmRSS"].strip()


def test_without_a_relay_the_order_email_is_only_logged(medusa_image, tmp_path):
    """The chart's default (smtp.host ""): Medusa's local provider logs the
    confirmation and nothing is sent."""
    containers = rendered_containers({}, tmp_path)
    assert not [e for e in containers["medusa"]["env"] if e["name"].startswith("SMTP_")]
    port = devservices.free_port()
    # Its own Redis database, so that this server, not the one with the
    # relay, handles the order's event.
    replacements = medusa_image.replacements | {
        f"{RELEASE}-redis:6379": f"127.0.0.1:{medusa_image.redis_port}/1"
    }
    env = container_env(containers["medusa"], replacements) | {"PORT": str(port)}
    api = StoreApi(base_url=f"http://127.0.0.1:{port}", host=medusa_image.host)
    mounts = {"/tmp": writable_dir(tmp_path / "tmp"), "/app/static": writable_dir(tmp_path / "up")}
    name = start_server(medusa_image, api, containers["medusa"], env, mounts)
    try:
        order = api.place_order("no-relay@example.com")
        expected = (
            "Attempting to send a notification to: 'no-relay@example.com' on the channel: "
            "'email' with template: 'order-placed'"
        )
        deadline = time.monotonic() + 90
        while True:
            proc = podman("logs", name)
            logs = proc.stdout + proc.stderr
            if expected in logs or time.monotonic() > deadline:
                break
            time.sleep(1)
        line = next((line for line in logs.splitlines() if expected in line), logs[-3000:])
        assert expected in line and order["id"] in line, line
        assert not [m for m in medusa_image.smtp.messages if "no-relay@example.com" in m.recipients]
    finally:
        stop_server(name, medusa_image.workdir / "server-without-relay.log")
