"""The backup and restore Jobs (issue 12) run in the platform image the way the
engine charts run them: the CronJob template's container from `helm template`
(command, environment, user, read-only root, dropped capabilities, its
volumes: the scripts' ConfigMap, the Secrets as files, the store's volume, an
emptyDir /tmp, and a file at /dev/termination-log as the kubelet provides),
started with podman against real servers on loopback: moto's S3, and the
store's database (PostgreSQL 16 for Medusa, MariaDB for WooCommerce).

This proves the image has what the scripts need (bash, tar, gzip, pg_dump 16,
the MariaDB client, python3 with boto3 and provisioning.objectstore) and that
they work as the chart's uid on a read-only root. What a cluster adds (the
Job controller, NetworkPolicies, the podAffinity) is not here.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from provisioning.tests import chartkit
from provisioning.tests.dbservers import MariaDB, PostgreSQL, mariadb_missing
from provisioning.tests.test_platform_image import (  # noqa: F401 - the fixture
    RUNTIME_FLAGS,
    platform_image,
    required,
    run,
)

pytestmark = pytest.mark.slow

PASSWORD = "Image-Pass_5k2"
FIXTURES = Path(__file__).parent / "fixtures"


def backup_pod(chart: str, object_storage, action: str) -> tuple[dict, dict, dict]:
    """The rendered pod spec and container of the chart's ``action`` template,
    and the chart's ConfigMaps."""
    docs = chartkit.render(chart, [chartkit.DEPLOY_VALUES / f"{chart}-vps.yaml",
                                   FIXTURES / chart / "store-values.yaml"], {
        "backup.objectStorage.endpoint": object_storage.endpoint,
        "backup.objectStorage.bucket": object_storage.bucket,
        "backup.objectStorage.region": object_storage.region,
    })
    [cron] = [d for d in docs if d["kind"] == "CronJob"
              and d["metadata"]["name"] == f"store-test-{action}"]
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    config_maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    return pod, pod["containers"][0], config_maps


def podman_args(pod: dict, container: dict, config_maps: dict, secrets: dict, volumes: dict,
                workdir: Path, env_overrides: dict, name: str) -> list[str]:
    """podman run arguments for a rendered pod: its user, security context,
    environment (literal values only: the backup pods have no secretKeyRef)
    and every volume, each translated to what podman can mount."""
    context = {**pod["securityContext"], **container["securityContext"]}
    uid, gid = context["runAsUser"], context["runAsGroup"]
    flags = ["--user", f"{uid}:{gid}", "--cap-drop", ",".join(context["capabilities"]["drop"])]
    if context.get("readOnlyRootFilesystem"):
        flags += ["--read-only", "--read-only-tmpfs=false"]
    if context.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    env = {}
    for item in container["env"]:
        assert "value" in item, f"this test cannot provide {item}"
        env[item["name"]] = chartkit.kubelet_expand(item["value"], env)
    env.update(env_overrides)
    env_file = workdir / f"{name}.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    env_file.chmod(0o600)
    specs = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        volume = specs[mount["name"]]
        mode = "ro" if mount.get("readOnly") else "rw"
        if "emptyDir" in volume:
            flags += ["--tmpfs", f"{mount['mountPath']}:rw,size=64m,mode=1777"]
            continue
        if "configMap" in volume:
            source = workdir / f"configmap-{mount['name']}"
            source.mkdir(exist_ok=True)
            for key, value in config_maps[volume["configMap"]["name"]].items():
                (source / key).write_text(value)
        elif "secret" in volume:
            source = workdir / f"secret-{mount['name']}"
            source.mkdir(exist_ok=True)
            data = secrets[volume["secret"]["secretName"]]
            for item in volume["secret"]["items"]:
                (source / item["path"]).write_text(data[item["key"]])
                (source / item["path"]).chmod(0o644)  # a Secret volume's defaultMode
        else:
            source = volumes[volume["persistentVolumeClaim"]["claimName"]]
        source.chmod(0o755)
        flags += ["-v", f"{source}:{mount['mountPath']}:{mode}"]
    termination_log = workdir / f"{name}.termination-log"
    termination_log.write_text("")
    termination_log.chmod(0o666)
    flags += ["-v", f"{termination_log}:/dev/termination-log:rw"]
    return ["podman", "run", *RUNTIME_FLAGS, "--network", "host", "--name", name,
            "--env-file", str(env_file), *flags, "--workdir", container["workingDir"],
            "IMAGE", *container["command"]]


@pytest.fixture
def workdir():
    path = Path(tempfile.mkdtemp(prefix="backup-image-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("chart", ["medusa", "woocommerce"])
def test_the_image_backs_up_and_restores_a_store_as_the_chart_runs_it(
        platform_image, object_storage, workdir, chart):  # noqa: F811
    if not shutil.which("podman"):
        required("podman missing: apt-get install -y podman runc")
    if chart == "woocommerce" and mariadb_missing():
        required(mariadb_missing())
    # The store's database, with a row, on loopback.
    names: list[str] = []
    (workdir / "mariadb").mkdir()
    if chart == "medusa":
        server = PostgreSQL(workdir / "pg").start()
        server.sql(f"CREATE ROLE medusa LOGIN PASSWORD '{PASSWORD}';"
                   "CREATE DATABASE medusa OWNER medusa;")
        server.sql("SET ROLE medusa; CREATE TABLE \"order\" (id text PRIMARY KEY, email text);"
                   "INSERT INTO \"order\" VALUES ('order_01', 'buyer@example.test');", "medusa")
        select = ("SELECT id, email FROM \"order\"", "medusa")
    else:
        server = MariaDB(workdir / "mariadb").start()
        server.create_store_database("wordpress", PASSWORD)
        server.sql("CREATE TABLE wp_wc_orders (id int PRIMARY KEY, billing_email text);"
                   "INSERT INTO wp_wc_orders VALUES (1, 'buyer@example.test');", "wordpress")
        select = ("SELECT id, billing_email FROM wp_wc_orders", "wordpress")
    try:
        # The store's files volume, owned by the chart's uid (fsGroup).
        files = workdir / "volume"
        uploads = files / "wp-content" / "uploads" if chart == "woocommerce" else files
        uploads.mkdir(parents=True, exist_ok=True)
        (uploads / "mug.jpg").write_bytes(os.urandom(50_000))
        secrets = {
            "store-credentials": {"db-password": PASSWORD},
            "store-backup-s3": {
                "access-key": object_storage.access_key_file.read_text(),
                "secret-key": object_storage.secret_key_file.read_text()},
        }
        claim = "store-test-uploads" if chart == "medusa" else "store-test-wordpress"
        overrides = {"DB_HOST": "127.0.0.1", "DB_PORT": str(server.port),
                     "BACKUP_PREFIX": "stores/k3x9q2m1ab/b-image/"}
        before = server.sql(*select)
        for action in ("backup", "restore"):
            pod, container, config_maps = backup_pod(chart, object_storage, action)
            uid = pod["securityContext"]["runAsUser"]
            for path in [files, *files.rglob("*")]:
                os.chown(path, uid, uid)
            name = f"sp-backup-{uuid.uuid4().hex[:6]}-{action}"
            names.append(name)
            args = podman_args(pod, container, config_maps, secrets, {claim: files},
                               workdir, overrides, name)
            args[args.index("IMAGE")] = platform_image
            done = run(args, timeout=300)
            assert done.returncode == 0, (
                f"{action} failed in the image:\n{done.stdout}\n{done.stderr}\n"
                f"termination message: {(workdir / f'{name}.termination-log').read_text()}")
            if action == "backup":
                manifest = json.loads(object_storage.read("stores/k3x9q2m1ab/b-image/parts.json"))
                assert [p["name"] for p in manifest["parts"]] == ["database", "files"]
                # Lose the row and the file; the restore brings both back.
                if chart == "medusa":
                    server.sql('DELETE FROM "order"', "medusa")
                else:
                    server.sql("DELETE FROM wp_wc_orders", "wordpress")
                (uploads / "mug.jpg").unlink()
        assert server.sql(*select) == before
        assert (uploads / "mug.jpg").stat().st_size == 50_000
    finally:
        for name in names:
            run(["podman", "rm", "--force", name], timeout=120)
        server.stop()
