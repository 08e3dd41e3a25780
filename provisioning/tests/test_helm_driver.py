"""The helm driver, and the fake helm's faithfulness to the real binary."""

import json
import re
import subprocess

import pytest

from provisioning import errors, helm
from stores import constants as c
from stores.models import CommandRecord, Store

pytestmark = pytest.mark.django_db

CHART = "charts/woocommerce"
VALUES = "provisioning/tests/fixtures/woocommerce/store-values.yaml"


@pytest.fixture
def store(user):
    return Store.objects.create(owner=user, name="Acme", slug="acme", host="acme.localtest.me",
                                engine="woocommerce")


@pytest.fixture
def namespace(cluster, store):
    cluster.fake.cluster.create("namespaces", "", {"metadata": {"name": store.namespace}})
    return store.namespace


def run(binary, *args, env=None):
    return subprocess.run([binary, *args], capture_output=True, text=True, env=env, timeout=60)


# -- faithfulness ---------------------------------------------------------------
def test_the_fake_prints_the_release_json_shape_of_real_helm(real_helm_bin, cluster, store,
                                                             namespace):
    real = json.loads(run(real_helm_bin, "install", store.release, CHART, "-n", namespace,
                          "-f", VALUES, "--dry-run=client", "-o", "json").stdout)
    fake = json.loads(run(cluster.helm_bin, "upgrade", "--install", store.release, CHART,
                          "-n", namespace, "-f", VALUES, "-o", "json").stdout)
    assert set(fake) <= set(real)
    assert set(real) - set(fake) <= {"hooks", "config"}
    assert set(fake["info"]) == set(real["info"])
    assert fake["chart"]["metadata"] == real["chart"]["metadata"]
    assert fake["info"]["status"] == "deployed" and fake["version"] == 1
    assert fake["namespace"] == real["namespace"] == namespace


def test_the_fake_reports_an_unreachable_cluster_in_real_helms_words(real_helm_bin, cluster,
                                                                     store, tmp_path):
    cluster.fake.pause()
    env = {"KUBECONFIG": cluster.kubeconfig, "PATH": "/usr/bin:/bin",
           "FAKE_HELM_REAL_BIN": real_helm_bin, "HOME": str(tmp_path)}
    real = run(real_helm_bin, "status", store.release, "-n", "x", env=env)
    fake = run(cluster.helm_bin, "status", store.release, "-n", "x", env=env)
    assert (real.returncode, fake.returncode) == (1, 1)
    assert fake.stderr.strip() == real.stderr.strip()


def test_the_fake_renders_with_real_helm_so_schema_errors_match(real_helm_bin, cluster, store,
                                                                namespace, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("store:\n  host: 'not a host!'\n")
    real = run(real_helm_bin, "template", store.release, CHART, "-f", VALUES, "-f", str(bad))
    fake = run(cluster.helm_bin, "upgrade", "--install", store.release, CHART, "-n", namespace,
               "-f", VALUES, "-f", str(bad))
    assert real.returncode == fake.returncode == 1
    assert "values don't meet the specifications of the schema" in fake.stderr
    assert fake.stderr.strip() == real.stderr.strip()


def test_status_and_history_follow_helms_json(cluster, store, namespace):
    for _ in range(2):
        run(cluster.helm_bin, "upgrade", "--install", store.release, CHART, "-n", namespace,
            "-f", VALUES)
    history = json.loads(run(cluster.helm_bin, "history", store.release, "-n", namespace,
                             "-o", "json").stdout)
    assert [(h["revision"], h["status"]) for h in history] == [(1, "superseded"),
                                                              (2, "deployed")]
    assert set(history[0]) == {"revision", "updated", "status", "chart", "app_version",
                               "description"}
    missing = run(cluster.helm_bin, "status", "nope", "-n", namespace)
    assert (missing.returncode, missing.stderr.strip()) == (1, "Error: release: not found")


# -- the driver -----------------------------------------------------------------
def test_every_call_is_recorded_with_secrets_masked(store, real_helm_bin, settings):
    settings.HELM_BIN = real_helm_bin
    driver = helm.Helm(store.id, secrets=["hunter2-secret"])
    driver.run(["template", "x", CHART, "-f", VALUES, "--set-string",
                "store.name=hunter2-secret"], timeout=60)
    record = CommandRecord.objects.get(store=store)
    assert record.exit_code == 0
    assert "store.name=********" in record.argv
    assert "hunter2-secret" not in record.stdout + json.dumps(record.argv)
    assert record.duration_ms is not None and record.finished_at is not None


def test_a_failure_raises_a_typed_error_with_helms_first_line(store, cluster, settings):
    cluster.fake.pause()
    with pytest.raises(errors.ClusterUnreachable) as caught:
        helm.Helm(store.id).status(store.release, store.namespace)
    assert caught.value.message.startswith("kubernetes cluster unreachable")
    assert CommandRecord.objects.get(store=store).exit_code == 1


@pytest.mark.parametrize(("stderr", "error"), [
    ('Error: kubernetes cluster unreachable: Get "https://1.2.3.4:6443/version": dial tcp '
     "1.2.3.4:6443: connect: connection refused", errors.ClusterUnreachable),
    ("Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress",
     errors.ReleaseLocked),
    ("Error: INSTALLATION FAILED: 1 error occurred:\n\t* persistentvolumeclaims \"data\" is "
     "forbidden: exceeded quota: store-quota", errors.QuotaExceeded),
    ("Error: values don't meet the specifications of the schema(s) in the following chart(s):",
     errors.ChartError),
    ("Error: INSTALLATION FAILED: resource not ready, name: web, kind: Deployment, status: "
     "InProgress\ncontext deadline exceeded", errors.TimedOut),
    ("Error: the server has received too many requests and has asked us to try again later",
     errors.ClusterThrottled),
    ("Error: something nobody has seen before", errors.HelmFailed),
])
def test_helms_wording_is_classified_into_reasons(stderr, error):
    assert helm.classify(stderr) is error


def test_helm_is_stopped_with_sigterm_so_it_releases_its_lock(store, cluster, namespace,
                                                              settings):
    """A hung helm is asked to stop: it marks its release failed instead of
    leaving it pending (a SIGKILL would leave pending-install behind)."""
    cluster.helm_faults({"command": "upgrade", "action": "hang"})

    def tick():
        # Once helm has stored the pending release and is waiting.
        if cluster.helm_faults_left()[0].get("times", 1) == 0:
            raise errors.Cancelled()

    with pytest.raises(errors.Cancelled):
        helm.Helm(store.id, tick=tick).upgrade_install(
            store.release, CHART, namespace, [VALUES], timeout=300)
    status = json.loads(run(cluster.helm_bin, "status", store.release, "-n", namespace,
                            "-o", "json").stdout)
    assert status["info"]["status"] == "failed"
    assert "context canceled" in status["info"]["description"]
    record = CommandRecord.objects.get(store=store, argv__contains=["upgrade"])
    assert record.stderr == "stopped by the platform"


# -- helm's own lock --------------------------------------------------------------
def test_a_first_install_left_pending_is_uninstalled_then_retried(api, eager, cluster):
    cluster.helm_faults({"command": "upgrade", "action": "pending"})
    with eager():
        store_id = api.post("/api/stores/", {"name": "Acme", "engine": "woocommerce"},
                            format="json").json()["id"]
    store = Store.objects.get(pk=store_id)
    assert store.status == c.FAILED  # helm died (SIGKILL) mid-install
    status = json.loads(run(cluster.helm_bin, "status", store.release, "-n", store.namespace,
                            "-o", "json").stdout)
    assert status["info"]["status"] == "pending-install"
    with eager():
        api.post(f"/api/stores/{store_id}/retry/")
    store.refresh_from_db()
    assert store.status == c.READY
    recovery = store.events.get(reason=c.REASON_RELEASE_LOCKED)
    assert re.search(r"left pending-install .* removed the unfinished install", recovery.message)


def test_an_upgrade_left_pending_is_rolled_back_to_the_last_good_revision(api, eager, cluster):
    with eager():
        store_id = api.post("/api/stores/", {"name": "Acme", "engine": "woocommerce"},
                            format="json").json()["id"]
    store = Store.objects.get(pk=store_id)
    # A second, interrupted upgrade by a process that died.
    cluster.helm_faults({"command": "upgrade", "action": "pending"})
    env_run = run(cluster.helm_bin, "upgrade", "--install", store.release, CHART, "-n",
                  store.namespace, "-f", VALUES)
    assert env_run.returncode == -9
    Store.objects.filter(pk=store_id).update(status=c.FAILED)
    with eager():
        api.post(f"/api/stores/{store_id}/retry/")
    store.refresh_from_db()
    assert store.status == c.READY
    assert store.events.filter(message__contains="rolled back to revision 1").exists()
    assert store.helm_revision == 4  # 1 deployed, 2 pending, 3 rollback, 4 this upgrade
