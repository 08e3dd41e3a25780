"""Secrets and settings: the credentials key (its own, rotatable, an
unreadable row a clear error), no-store on credentials, a cheap /readyz
that keeps details for operators, /metrics closed without its token in
production."""

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from provisioning import install
from provisioning.errors import CredentialsUnreadable as ProvisioningCredentialsUnreadable
from stores import constants as c
from stores.models import Store, StoreCredentials, WebhookEndpoint

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
VALUES = {"admin-username": "admin", "admin-email": "a@example.com", "admin-password": "s3cret!"}


@pytest.fixture
def store(user, settings):
    settings.STORE_CREDENTIALS_KEYS = ["old-key"]
    store = Store.objects.create(owner=user, name="Acme", slug="acme", host="acme.localtest.me",
                                 engine="woocommerce", status=c.READY, helm_revision=1)
    StoreCredentials.objects.create(store=store, encrypted=StoreCredentials.encrypt(VALUES))
    return store


def start_settings(**env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("STORE_CREDENTIALS_KEY", "STORE_CREDENTIALS_KEY_FILE")}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "storeplatform.settings", **env},
        capture_output=True, text=True, timeout=120)


def test_production_refuses_to_start_without_a_credentials_key():
    proc = start_settings(DJANGO_DEBUG="false", DJANGO_SECRET_KEY="x" * 50)
    assert proc.returncode != 0
    assert "Set STORE_CREDENTIALS_KEY" in proc.stderr
    started = start_settings(DJANGO_DEBUG="false", DJANGO_SECRET_KEY="x" * 50,
                             STORE_CREDENTIALS_KEY="k" * 40)
    assert started.returncode == 0, started.stderr[-2000:]


def test_rotating_the_django_secret_key_does_not_touch_the_credentials(store, settings, api):
    settings.SECRET_KEY = "a-brand-new-django-secret-key-" + "x" * 30
    assert api.get(f"/api/stores/{store.id}/credentials/").json()["password"] == "s3cret!"


def test_several_keys_decrypt_and_the_command_reencrypts_with_the_newest(store, settings):
    settings.STORE_CREDENTIALS_KEYS = ["new-key", "old-key"]
    creds = StoreCredentials.objects.get(store=store)
    assert creds.values == VALUES  # the old key still reads it
    call_command("reencrypt_credentials")
    settings.STORE_CREDENTIALS_KEYS = ["new-key"]  # the old key can go now
    assert StoreCredentials.objects.get(store=store).values == VALUES
    call_command("reencrypt_credentials")  # nothing left to do, and says so


def test_the_command_reencrypts_webhook_secrets_too(store, user, settings):
    settings.STORE_CREDENTIALS_KEYS = ["old-key"]
    endpoint = WebhookEndpoint.objects.create(
        owner=user, url="https://hooks.example.com/in", event_types=["store.ready"],
        secret_encrypted=WebhookEndpoint.encrypt("whsec_current"),
        previous_secret_encrypted=WebhookEndpoint.encrypt("whsec_previous"),
        previous_secret_until=timezone.now() + timedelta(hours=1))
    settings.STORE_CREDENTIALS_KEYS = ["new-key", "old-key"]
    call_command("reencrypt_credentials")
    settings.STORE_CREDENTIALS_KEYS = ["new-key"]  # the old key can go now
    endpoint.refresh_from_db()
    assert endpoint.signing_secrets == ["whsec_current", "whsec_previous"]


def test_the_command_names_rows_no_key_can_read(store, settings):
    settings.STORE_CREDENTIALS_KEYS = ["unrelated-key"]
    with pytest.raises(CommandError, match=store.id):
        call_command("reencrypt_credentials")


def test_an_unreadable_row_is_a_clear_error_never_a_500(store, settings, api, client, user,
                                                        caplog):
    settings.STORE_CREDENTIALS_KEYS = ["a-key-that-never-encrypted-it"]
    response = api.get(f"/api/stores/{store.id}/credentials/")
    assert response.status_code == 409
    assert "cannot be decrypted" in response.json()["detail"]
    assert "reencrypt_credentials" in response.json()["detail"]
    assert f"store={store.id}" in caplog.text
    client.force_login(user)
    page = client.get(f"/stores/{store.id}/credentials/")
    assert page.status_code == 409
    assert "cannot be decrypted" in page.content.decode()
    with pytest.raises(ProvisioningCredentialsUnreadable):
        install.credentials(store)  # a worker fails the store with this reason


def test_credentials_responses_are_never_cached(store, api, client, user):
    response = api.get(f"/api/stores/{store.id}/credentials/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    client.force_login(user)
    page = client.get(f"/stores/{store.id}/credentials/")
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]


# --- /readyz ------------------------------------------------------------------


def test_readyz_runs_helm_once_per_cache_period(client, settings, tmp_path):
    counter = tmp_path / "runs"
    helm = tmp_path / "helm"
    helm.write_text(f"#!/bin/sh\necho run >> {counter}\necho v4.3.1\n")
    helm.chmod(0o755)
    settings.HELM_BIN = str(helm)
    settings.READYZ_HELM_CACHE_SECONDS = 60
    for _ in range(5):
        assert client.get("/readyz").status_code == 200
    assert counter.read_text().count("run") == 1
    settings.READYZ_HELM_CACHE_SECONDS = 0
    time.sleep(0.01)
    client.get("/readyz")
    assert counter.read_text().count("run") == 2


def test_readyz_tells_anonymous_callers_only_what_is_down(client, settings, caplog):
    settings.HELM_BIN = "/nonexistent/helm"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"ok": False, "checks": {
        "database": {"ok": True}, "redis": {"ok": True}, "helm": {"ok": False}}}
    assert "helm binary not found: /nonexistent/helm" in caplog.text  # the log has it


def test_readyz_gives_operators_the_details(client, settings, staff, user):
    settings.HELM_BIN = "/nonexistent/helm"
    client.force_login(staff)
    helm = client.get("/readyz").json()["checks"]["helm"]
    assert helm == {"ok": False, "detail": "helm binary not found: /nonexistent/helm"}
    client.force_login(user)  # signed in, but not an operator
    assert "detail" not in client.get("/readyz").json()["checks"]["helm"]
    client.logout()
    settings.METRICS_TOKEN = "scrape-token"
    with_token = client.get("/readyz", HTTP_AUTHORIZATION="Bearer scrape-token").json()
    assert "detail" in with_token["checks"]["helm"]


# --- /metrics -----------------------------------------------------------------


def test_metrics_are_refused_without_a_token_in_production(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_PUBLIC = False
    response = client.get("/metrics")
    assert response.status_code == 403
    assert "set METRICS_TOKEN" in response.content.decode()
    settings.METRICS_TOKEN = "scrape-token"
    assert client.get("/metrics").status_code == 401
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token")
    assert ok.status_code == 200 and b"storeplatform_stores" in ok.content


def test_production_settings_close_metrics_unless_told_otherwise():
    probe = ("from django.conf import settings; "
             "print(settings.METRICS_PUBLIC)")
    env = {"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "x" * 50,
           "STORE_CREDENTIALS_KEY": "k" * 40}
    closed = subprocess.run([sys.executable, "-c", "import django; django.setup(); " + probe],
                            cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "DJANGO_SETTINGS_MODULE": "storeplatform.settings",
                                 **env})
    assert closed.stdout.strip().endswith("False"), closed.stderr[-2000:]


def test_the_images_collectstatic_step_can_load_the_settings():
    # The Dockerfile imports the settings with DEBUG off at build time.
    import re

    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    run = next(line for line in text.splitlines() if "collectstatic" in line)
    env = dict(re.findall(r"\b([A-Z_]+)=(\S+)", run.split("python", 1)[0]))
    assert env.get("DJANGO_DEBUG") == "false"
    proc = start_settings(**env)
    assert proc.returncode == 0, proc.stderr[-2000:]
