"""The platform's side of store e-mail: one SMTP relay for every store.

Settings (STORE_SMTP_*) become the generated ``smtp`` values block
(docs/chart-contract.md), checked by rendering the real chart with them; the
password goes into the Secret store-smtp, written through the fake
Kubernetes API server; the store page says when mail is only logged.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest
import yaml

from provisioning import engines, kube
from provisioning.tests.chartkit import CHARTS, DEPLOY_VALUES, ROOT, render
from stores.models import CommandRecord, Store

pytestmark = pytest.mark.django_db
RELAY_PASSWORD = "Relay-Sentinel-Pass-4q8z"
RELAY = {
    "STORE_SMTP_HOST": "smtp.relay.example.net",
    "STORE_SMTP_PORT": 2525,
    "STORE_SMTP_USER": "stores@example.net",
    "STORE_SMTP_FROM": "shops@example.net",
    "STORE_SMTP_TLS": "tls",
}


def settings_in_a_new_process(**env: str) -> subprocess.CompletedProcess:
    """Load the settings the way a process of the platform does, from env."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STORE_SMTP_")}
    return subprocess.run(
        [sys.executable, "-c",
         "import django; django.setup(); from django.conf import settings as s; "
         "print(s.STORE_SMTP_HOST, s.STORE_SMTP_PORT, s.STORE_SMTP_TLS, "
         "repr(s.STORE_SMTP_PASSWORD))"],
        env={**clean, "DJANGO_SETTINGS_MODULE": "storeplatform.settings", **env},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )


def test_the_relay_settings_default_to_no_relay_and_starttls_on_587():
    proc = settings_in_a_new_process()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["587", "starttls", "''"]


def test_the_relay_password_can_come_from_a_file(tmp_path):
    secret = tmp_path / "smtp-password"
    secret.write_text(RELAY_PASSWORD + "\n")
    proc = settings_in_a_new_process(STORE_SMTP_HOST="smtp.example.net",
                                     STORE_SMTP_PASSWORD_FILE=str(secret))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["smtp.example.net", "587", "starttls", repr(RELAY_PASSWORD)]


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"STORE_SMTP_TLS": "ssl"}, "STORE_SMTP_TLS must be none, starttls or tls"),
        ({"STORE_SMTP_PORT": "70000"}, "STORE_SMTP_PORT must be a TCP port"),
        ({"STORE_SMTP_HOST": "smtp relay"}, "STORE_SMTP_HOST must be a host name"),
        ({"STORE_SMTP_FROM": "shops at example"}, "STORE_SMTP_FROM must be one e-mail address"),
        ({"STORE_SMTP_USER": "a\nb"}, "STORE_SMTP_USER must not contain control characters"),
    ],
)
def test_a_bad_relay_setting_stops_the_platform_saying_what_to_fix(env, says):
    proc = settings_in_a_new_process(**env)
    assert proc.returncode != 0
    assert says in proc.stderr


# -- the generated values ------------------------------------------------------------


@pytest.fixture
def store(api, cluster, eager) -> Store:
    with eager():
        response = api.post("/api/stores/", {"name": "Acme Shop", "engine": "woocommerce"},
                            format="json")
    assert response.status_code == 202, response.content
    return Store.objects.get(pk=response.json()["id"])


def generated_values(store: Store) -> dict:
    return engines.get_engine(store.engine).values(store)


def test_without_a_relay_the_values_say_so(store, settings):
    settings.STORE_SMTP_HOST = ""
    settings.STORE_SMTP_PASSWORD = ""
    assert generated_values(store)["smtp"] == {
        "host": "", "port": 587, "username": "", "from": "", "tls": "starttls",
        "existingSecret": "",
    }


def test_the_relay_reaches_the_chart_and_its_password_only_as_a_secret_name(
        store, settings, tmp_path):
    for key, value in RELAY.items():
        setattr(settings, key, value)
    settings.STORE_SMTP_PASSWORD = RELAY_PASSWORD

    values = generated_values(store)

    assert values["smtp"] == {
        "host": "smtp.relay.example.net", "port": 2525, "username": "stores@example.net",
        "from": "shops@example.net", "tls": "tls", "existingSecret": "store-smtp",
    }
    dumped = yaml.safe_dump(values)
    assert RELAY_PASSWORD not in dumped
    # What helm gets: the real chart accepts the block and wires it up.
    path = tmp_path / "values.yaml"
    path.write_text(dumped)
    docs = render("woocommerce", [DEPLOY_VALUES / "woocommerce-local.yaml", path],
                  release=store.release, namespace=store.namespace)
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["STORE_SMTP_HOST"]["value"] == "smtp.relay.example.net"
    assert env["STORE_SMTP_TLS"]["value"] == "tls"
    assert env["STORE_SMTP_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "store-smtp", "key": "password"}
    assert any(d["metadata"]["name"].endswith("smtp-egress") for d in docs
               if d["kind"] == "NetworkPolicy")


def test_provisioning_with_a_relay_writes_its_secret_before_helm_needs_it(
        api, cluster, eager, settings):
    for key, value in RELAY.items():
        setattr(settings, key, value)
    settings.STORE_SMTP_PASSWORD = RELAY_PASSWORD
    with eager():
        response = api.post("/api/stores/", {"name": "Mailing Shop", "engine": "woocommerce"},
                            format="json")
    store = Store.objects.get(pk=response.json()["id"])
    assert store.status == "ready", store.status_message
    code, secret = cluster.fake.cluster.get("secrets", store.namespace, "store-smtp")
    assert code == 200
    assert base64.b64decode(secret["data"]["password"]).decode() == RELAY_PASSWORD
    steps = [r.argv for r in store.commands.filter(tool="kube")]
    assert ["apply", "secret", "store-smtp", "--namespace", store.namespace] in steps


def test_a_relay_without_password_names_no_secret(store, settings):
    for key, value in RELAY.items():
        setattr(settings, key, value)
    settings.STORE_SMTP_PASSWORD = ""
    assert generated_values(store)["smtp"]["existingSecret"] == ""


def test_the_chart_contract_documents_the_smtp_block_the_platform_generates():
    contract = (ROOT / "docs" / "chart-contract.md").read_text()
    block = contract[contract.index("smtp:"):]
    for key in engines.smtp_values():
        assert f"\n  {key}:" in block, key


@pytest.mark.parametrize("engine", engines.ENGINES.values(), ids=lambda e: e.name)
def test_every_chart_declares_the_smtp_block_the_platform_sends(engine):
    """The contract asks every chart for `smtp`, and the platform sends it
    to every store: a chart's schema must take exactly its keys."""
    schema = json.loads((CHARTS / engine.chart / "values.schema.json").read_text())
    assert set(schema["properties"]["smtp"]["properties"]) == set(engines.smtp_values())


# -- the Secret ----------------------------------------------------------------------


def secret_in(cluster, store: Store) -> dict | None:
    found = cluster.fake.cluster.objects.get(("secrets", store.namespace, "store-smtp"))
    return found


def test_the_password_is_written_to_the_store_namespace_and_updated_when_it_changes(
        store, cluster):
    assert kube.ensure_smtp_secret(store, RELAY_PASSWORD) is True
    secret = secret_in(cluster, store)
    assert base64.b64decode(secret["data"]["password"]).decode() == RELAY_PASSWORD
    assert secret["metadata"]["labels"]["storeplatform.io/store-id"] == store.id
    first_uid = secret["metadata"]["uid"]

    assert kube.ensure_smtp_secret(store, "Rotated-Relay-Pass") is True

    secret = secret_in(cluster, store)
    assert base64.b64decode(secret["data"]["password"]).decode() == "Rotated-Relay-Pass"
    assert secret["metadata"]["uid"] == first_uid  # replaced in place, not recreated
    assert ("PUT", f"/api/v1/namespaces/{store.namespace}/secrets/store-smtp") in (
        cluster.fake.cluster.requests)


def test_writing_the_secret_is_recorded_without_the_password(store, cluster):
    kube.ensure_smtp_secret(store, RELAY_PASSWORD)
    kube.ensure_smtp_secret(store, RELAY_PASSWORD)

    records = CommandRecord.objects.filter(store_id=store.id, argv__contains=["store-smtp"])
    assert [r.argv for r in records] == [
        ["apply", "secret", "store-smtp", "--namespace", store.namespace]] * 2
    assert all(r.exit_code == 0 for r in records)
    for record in CommandRecord.objects.filter(store_id=store.id):
        assert RELAY_PASSWORD not in f"{record.argv} {record.stdout} {record.stderr}"


def test_no_password_writes_nothing(store, cluster):
    before = CommandRecord.objects.filter(store_id=store.id).count()

    assert kube.ensure_smtp_secret(store, "") is False

    assert secret_in(cluster, store) is None
    assert CommandRecord.objects.filter(store_id=store.id).count() == before


def test_a_refused_write_fails_with_the_apis_reason_and_is_recorded(store, cluster):
    from provisioning import errors

    cluster.fake.faults["stuck_namespaces"] = {store.namespace}  # stays terminating
    cluster.fake.cluster.delete("namespaces", "", store.namespace)
    with pytest.raises(errors.ProvisioningError) as failure:
        kube.ensure_smtp_secret(store, RELAY_PASSWORD)
    assert "being terminated" in failure.value.message
    record = CommandRecord.objects.filter(store_id=store.id, argv__contains=["store-smtp"]).get()
    assert record.exit_code == 1 and RELAY_PASSWORD not in record.stderr


# -- the store page ------------------------------------------------------------------


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


def test_the_store_page_says_mail_is_only_logged_without_a_relay(browser, store, settings):
    settings.STORE_SMTP_HOST = ""
    html = browser.get(f"/stores/{store.id}/").content.decode()
    assert 'data-testid="mail-note"' in html
    assert "written to its log, not sent" in html

    settings.STORE_SMTP_HOST = "smtp.relay.example.net"
    html = browser.get(f"/stores/{store.id}/").content.decode()
    assert 'data-testid="mail-note"' not in html
