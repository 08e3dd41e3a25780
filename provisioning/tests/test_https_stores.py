"""Ready means valid HTTPS (issue 11), end to end through the real task path:
the fake cluster models cert-manager's ingress-shim (an annotated Ingress
gets a Certificate whose Ready condition a fault switch holds back) and an
ingress controller that picks its certificate by SNI, signed by the tests'
CA (STORE_PROBE_CA_FILE) once the Certificate is Ready."""

import pytest

from provisioning import housekeeping
from stores import constants as c
from stores import notification_types
from stores.models import Domain, Store

pytestmark = pytest.mark.django_db


def create(api, eager, name="Secure Shop", engine="woocommerce"):
    with eager():
        response = api.post("/api/stores/", {"name": name, "engine": engine}, format="json")
    assert response.status_code == 202, response.content
    return Store.objects.get(pk=response.json()["id"])


def test_a_store_waits_for_its_certificate_and_fails_when_it_is_not_issued(
        api, eager, cluster, settings):
    cluster.use_tls("per-store")
    settings.STORE_CERTIFICATE_TIMEOUT = 1
    cluster.fake.faults["certificates_pending"] = {"secure-shop.localtest.me"}
    store = create(api, eager)

    assert (store.status, store.status_reason) == (c.FAILED, c.REASON_CERTIFICATE_NOT_ISSUED)
    assert store.status_message == (
        "The certificate was not issued in time for secure-shop.localtest.me: Issuing "
        "certificate as Secret does not exist")
    waiting = store.events.filter(step=c.STEP_WAITING_FOR_CERTIFICATE)
    assert waiting.filter(kind=c.EVENT_INFO, message="Waiting for the certificate of "
                          "secure-shop.localtest.me: Issuing certificate as Secret does not "
                          "exist").exists()
    assert waiting.filter(kind=c.EVENT_WARNING, reason=c.REASON_CERTIFICATE_NOT_ISSUED).exists()
    # The owner is told once, by the failure's own notification type.
    told = [t.key for t in map(notification_types.type_for, store.events.all()) if t]
    assert told == ["certificate.failed"], told
    diagnostics = store.diagnostics["certificates"]
    assert diagnostics["certificates"] == [{
        "name": f"{store.release}-tls", "dns_names": ["secure-shop.localtest.me"],
        "ready": False, "message": "Issuing certificate as Secret does not exist"}]
    [challenge] = diagnostics["challenges"]
    assert challenge["dns_name"] == "secure-shop.localtest.me"
    assert "Waiting for HTTP-01 challenge propagation" in challenge["reason"]
    assert {e["reason"] for e in diagnostics["events"]} >= {"Issuing"}

    # cert-manager gets there (DNS fixed, port 80 opened): a retry is Ready,
    # the probe having verified the now-issued certificate over HTTPS.
    cluster.fake.faults["certificates_pending"] = set()
    with eager():
        assert api.post(f"/api/stores/{store.id}/retry/").status_code == 202
    store.refresh_from_db()
    assert store.status == c.READY, store.status_message
    assert store.storefront_url == "https://secure-shop.localtest.me/"


def test_the_failed_store_page_shows_why_the_certificate_was_not_issued(
        api, eager, cluster, settings, client, user):
    cluster.use_tls("per-store")
    settings.STORE_CERTIFICATE_TIMEOUT = 1
    cluster.fake.faults["certificates_pending"] = {"*"}
    store = create(api, eager)
    client.force_login(user)
    html = client.get(f"/stores/{store.id}/").content.decode()
    assert "The store&#x27;s TLS certificate was not issued" in html
    assert "Waiting for HTTP-01 challenge propagation" in html


def test_a_self_signed_certificate_does_not_make_a_store_ready(api, eager, cluster):
    """Wildcard mode, but the operator never installed the wildcard
    certificate: the controller shows its own self-signed one."""
    cluster.use_tls("wildcard")
    cluster.fake.faults["default_certificate"] = "self-signed"
    store = create(api, eager)
    assert (store.status, store.status_reason) == (c.FAILED, c.REASON_STOREFRONT_DOWN)
    assert "its certificate is not valid for secure-shop.localtest.me: self-signed" in (
        store.status_message)


def test_wildcard_mode_needs_no_certificate_per_store(api, eager, cluster):
    cluster.use_tls("wildcard")
    store = create(api, eager, engine="medusa")
    assert store.status == c.READY, store.status_message
    assert cluster.fake.cluster.list("certificates", store.namespace, "") == []
    assert not store.events.filter(step=c.STEP_WAITING_FOR_CERTIFICATE).exists()


def test_a_custom_domain_whose_certificate_is_not_issued_fails_and_a_retry_drops_it(
        api, eager, cluster, settings, fake_dns):
    cluster.use_tls("wildcard")
    settings.STORE_CERTIFICATE_TIMEOUT = 1
    store = create(api, eager)
    domain = api.post(f"/api/stores/{store.id}/domains/", {"hostname": "shop.example.com"},
                      format="json").json()
    fake_dns.set("_storeplatform-challenge.shop.example.com", "TXT",
                 domain["verification_token"])
    fake_dns.set("shop.example.com", "CNAME", store.host)
    cluster.fake.faults["certificates_pending"] = {"shop.example.com"}
    with eager():
        api.post(f"/api/stores/{store.id}/domains/{domain['id']}/verify/")
    store.refresh_from_db()
    assert (store.status, store.operation, store.status_reason) == (
        c.FAILED, c.OP_CHANGE_URL, c.REASON_CERTIFICATE_NOT_ISSUED)
    # Its own HTTP-01 certificate, even in wildcard mode.
    [certificate] = cluster.fake.cluster.list("certificates", store.namespace, "")
    assert certificate["spec"]["dnsNames"] == ["shop.example.com"]
    row = Domain.objects.get()
    assert (row.status, row.certificate_state) == (c.DOMAIN_FAILED, "failed")

    with eager():
        api.post(f"/api/stores/{store.id}/retry/")
    store.refresh_from_db()
    assert store.status == c.READY, store.status_message
    assert cluster.fake.cluster.list("certificates", store.namespace, "") == []


def test_an_expired_certificate_degrades_the_store_until_it_is_renewed(api, eager, cluster):
    cluster.use_tls("per-store")
    store = create(api, eager)
    assert store.status == c.READY, store.status_message
    cluster.fake.faults["expired_certificates"] = {"secure-shop.localtest.me"}
    assert housekeeping.check_health()["degraded"] == 1
    store.refresh_from_db()
    assert (store.status, store.status_reason) == (c.DEGRADED, c.REASON_CERTIFICATE_INVALID)
    assert "certificate has expired" in store.status_message
    cluster.fake.faults["expired_certificates"] = set()
    assert housekeeping.check_health()["recovered"] == 1
    told = [t.key for t in map(notification_types.type_for, store.events.order_by("id")) if t]
    assert told == ["store.ready", "certificate.invalid", "store.recovered"], told


def test_a_real_worker_shows_waiting_for_the_certificate_until_cert_manager_issues_it(
        api, cluster, start_celery, wait_for, client, user, transactional_db):
    """The step and cert-manager's message are on the store page while the
    worker waits; the store becomes Ready once the certificate is issued."""
    cluster.use_tls("per-store")
    cluster.fake.faults["certificates_pending"] = {"secure-shop.localtest.me"}
    worker = start_celery(STORE_TLS_MODE="per-store", STORE_TLS_CLUSTER_ISSUER="letsencrypt-prod",
                          STORE_INGRESS_PROBE_URL=cluster.fake.tls_ingress_url,
                          STORE_CERTIFICATE_TIMEOUT="300")
    response = api.post("/api/stores/", {"name": "Secure Shop", "engine": "woocommerce"},
                        format="json")
    store_id = response.json()["id"]

    def waiting():
        store = Store.objects.get(pk=store_id)
        # The step starts, then its detail comes from cert-manager's condition.
        return (store.current_step == c.STEP_WAITING_FOR_CERTIFICATE
                and store.status_message.startswith("Certificate:"))

    wait_for(waiting, timeout=120, message=worker.log()[-3000:])
    client.force_login(user)
    html = client.get(f"/stores/{store_id}/").content.decode()
    assert "Now: <strong>Waiting for the certificate</strong>" in html
    progress = html[html.find('data-testid="progress"'):][:800]
    assert ("Certificate: secure-shop.localtest.me: Issuing certificate as Secret does not "
            "exist") in progress, progress

    cluster.fake.faults["certificates_pending"] = set()  # cert-manager got there
    wait_for(lambda: Store.objects.get(pk=store_id).status == c.READY, timeout=120,
             message=worker.log()[-3000:])
