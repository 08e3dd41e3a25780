"""Webhooks: endpoints registered through the API and the account page,
store events delivered to a real HTTP receiver on loopback, signatures
checked with the standardwebhooks library's own verifier, retries, the
delivery log, disabling a failing endpoint, and the address checks that keep
the platform from reaching internal services (a real DNS server on loopback
plays the attacker's nameserver)."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from stores import notifications, webhooks
from stores.models import DeliveryAttempt, OutgoingEmail, Store, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

ALL_STORE_EVENTS = ["store.ready", "store.upgraded", "store.failed", "store.deleted"]


def register(api, url, event_types=("store.ready",), **extra):
    response = api.post("/api/webhooks/", {"url": url, "event_types": list(event_types),
                                           **extra}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def create_store(api, eager, name="Acme Shop"):
    with eager():
        response = api.post("/api/stores/", {"name": name, "engine": "woocommerce"},
                            format="json")
    assert response.status_code == 202, response.content
    return Store.objects.get(pk=response.json()["id"])


def pump_until(predicate, timeout=20):
    """Run the outbox (as beat does) until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        notifications.pump()
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail("the outbox did not get there in time")


def verified(request, secret):
    """The payload, verified by the standardwebhooks library (not our code)."""
    return Webhook(secret).verify(request.body, request.headers)


# -- registration ----------------------------------------------------------------
def test_an_endpoint_is_registered_and_its_secret_is_shown_once(api, receiver):
    created = register(api, receiver.url, ["store.failed", "store.ready"],
                       description="orders system")
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["store.ready", "store.failed"]  # registry order
    assert created["enabled"] is True
    shown = api.get(f"/api/webhooks/{created['id']}/").json()
    assert "secret" not in shown
    assert api.get("/api/webhooks/").json()[0]["url"] == receiver.url
    # The secret is kept encrypted, and signs.
    endpoint = WebhookEndpoint.objects.get()
    assert created["secret"] not in endpoint.secret_encrypted
    assert endpoint.secret == created["secret"]


@pytest.mark.parametrize(("url", "message"), [
    ("", "Enter the URL that should receive the webhooks."),
    ("hooks.example.com/x", "The URL must start with https:// or http://."),
    ("ftp://hooks.example.com/", "The URL must start with https:// or http://."),
    ("http:///path", "The URL has no host name."),
    ("http://user:pw@8.8.8.8/", "Put no user name or password in the URL"),
    ("http://8.8.8.8:99999/", "That is not a valid URL"),
    ("http://10.1.2.3/hook", "10.1.2.3, a private or reserved address"),
    ("http://192.168.1.10/", "192.168.1.10, a private or reserved address"),
    ("http://172.16.0.1/", "172.16.0.1, a private or reserved address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a link-local address"),
    ("http://224.0.0.251/", "224.0.0.251, a multicast address"),
    ("http://0.0.0.0/", "0.0.0.0, a private or reserved address"),
    ("http://[fd00::1]/", "fd00::1, a private or reserved address"),
    ("http://[fe80::1]/", "fe80::1, a link-local address"),
    ("http://[::ffff:10.0.0.1]/", "10.0.0.1, a private or reserved address"),
    ("http://[64:ff9b::a00:1]/", "10.0.0.1, a private or reserved address"),
    ("http://100.64.0.1/", "100.64.0.1, a private or reserved address"),
    ("http://no-such-host.invalid/", "no-such-host.invalid could not be resolved"),
])
def test_an_invalid_or_internal_url_is_refused_and_nothing_is_created(api, receiver, url,
                                                                       message):
    response = api.post("/api/webhooks/", {"url": url, "event_types": ["store.ready"]},
                        format="json")
    assert response.status_code == 400, response.content
    assert message in response.json()["detail"], response.json()
    assert response.json()["field"] == "url"
    assert not WebhookEndpoint.objects.exists()


def test_loopback_is_refused_unless_the_test_only_setting_allows_it(api, settings):
    settings.WEBHOOK_REQUIRE_HTTPS = False
    assert settings.WEBHOOK_TEST_ALLOW_LOOPBACK is False  # never on by default
    for url in ("http://127.0.0.1:8000/", "http://localhost/", "http://[::1]/",
                "http://127.1.2.3/"):
        response = api.post("/api/webhooks/", {"url": url, "event_types": ["store.ready"]},
                            format="json")
        assert response.status_code == 400, url
        assert "a loopback address" in response.json()["detail"]
    assert not WebhookEndpoint.objects.exists()


def test_https_is_required_when_debug_is_off(api, settings):
    settings.WEBHOOK_REQUIRE_HTTPS = True
    response = api.post("/api/webhooks/", {"url": "http://8.8.8.8/hook",
                                           "event_types": ["store.ready"]}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "The URL must start with https://."


def test_unknown_or_missing_event_types_are_refused(api, receiver):
    response = api.post("/api/webhooks/", {"url": receiver.url,
                                           "event_types": ["store.exploded"]}, format="json")
    assert response.status_code == 400
    assert "Unknown event types: store.exploded" in response.json()["detail"]
    response = api.post("/api/webhooks/", {"url": receiver.url, "event_types": []},
                        format="json")
    assert response.status_code == 400
    response = api.post("/api/webhooks/", {"url": receiver.url, "event_types": ["store.ready"],
                                           "secret": "mine"}, format="json")
    assert response.json() == {"secret": ["Unknown field: remove it from the request."]}
    assert not WebhookEndpoint.objects.exists()


def test_the_account_page_shows_the_same_refusals(client, user, receiver):
    client.force_login(user)
    response = client.post("/accounts/webhooks/new/", {"url": "http://10.0.0.1/",
                                                       "event_types": ["store.ready"]})
    assert response.status_code == 400
    assert "10.0.0.1, a private or reserved address" in response.content.decode()
    response = client.post("/accounts/webhooks/new/", {"url": receiver.url})
    assert "Pick at least one event type." in response.content.decode()
    assert not WebhookEndpoint.objects.exists()

    response = client.post("/accounts/webhooks/new/", {"url": receiver.url,
                                                       "event_types": ["store.ready"]})
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret in response.content.decode()  # shown once, here
    assert endpoint.secret not in client.get(f"/accounts/webhooks/{endpoint.pk}/").content.decode()


def test_someone_elses_endpoint_does_not_exist_for_you(api, other_api, client, user,
                                                       receiver):
    theirs = register(other_api, receiver.url)
    for url in (f"/api/webhooks/{theirs['id']}/", f"/api/webhooks/{theirs['id']}/deliveries/"):
        assert api.get(url).status_code == 404
    assert api.post(f"/api/webhooks/{theirs['id']}/test/").status_code == 404
    assert api.delete(f"/api/webhooks/{theirs['id']}/").status_code == 404
    assert api.get("/api/webhooks/").json() == []
    client.force_login(user)
    assert client.get(f"/accounts/webhooks/{theirs['id']}/").status_code == 404
    assert client.post(f"/accounts/webhooks/{theirs['id']}/delete/").status_code == 404
    assert WebhookEndpoint.objects.count() == 1


# -- DNS: every address checked, and checked again when sending ------------------
@pytest.fixture
def nameserver(settings):
    """A real DNS server on loopback whose answers the test changes."""
    from dnslib import QTYPE, RR, A
    from dnslib.server import BaseResolver, DNSServer

    from stores.tests.conftest import free_port

    answers: dict[str, list[str]] = {}

    class Resolver(BaseResolver):
        def resolve(self, request, handler):
            reply = request.reply()
            name = str(request.q.qname).rstrip(".")
            if request.q.qtype == QTYPE.A:
                for address in answers.get(name, []):
                    reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=0))
            return reply

    port = free_port()
    server = DNSServer(Resolver(), port=port, address="127.0.0.1")
    server.start_thread()
    settings.WEBHOOK_DNS_SERVERS = [f"127.0.0.1:{port}"]
    yield answers
    server.stop()


def test_a_host_with_one_internal_address_among_public_ones_is_refused(api, nameserver,
                                                                       settings):
    settings.WEBHOOK_REQUIRE_HTTPS = False
    nameserver["hooks.example.test"] = ["8.8.8.8", "10.0.0.7"]
    response = api.post("/api/webhooks/", {"url": "http://hooks.example.test/",
                                           "event_types": ["store.ready"]}, format="json")
    assert response.status_code == 400
    assert "hooks.example.test resolves to 10.0.0.7" in response.json()["detail"]


def test_a_host_that_turns_internal_after_registration_gets_nothing(api, nameserver,
                                                                    settings):
    """DNS rebinding: public when registered, internal when delivered to. The
    attempt is refused before any connection (the test would otherwise send
    traffic to 10.0.0.7, which it must never do)."""
    settings.WEBHOOK_REQUIRE_HTTPS = False
    nameserver["hooks.example.test"] = ["8.8.8.8"]
    created = register(api, "http://hooks.example.test/hook")
    nameserver["hooks.example.test"] = ["10.0.0.7"]
    delivery = webhooks.send_test_event(WebhookEndpoint.objects.get(pk=created["id"]))
    assert webhooks.deliver_endpoint(created["id"]) == 1
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None
    assert "hooks.example.test resolves to 10.0.0.7, a private or reserved address" in (
        attempt.error)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.PENDING and delivery.attempts == 1


# -- delivery --------------------------------------------------------------------
def test_store_events_arrive_signed_in_event_order_and_only_those_subscribed(
        api, user, receiver, cluster, eager):
    created = register(api, receiver.url, ["store.ready", "store.upgraded", "store.deleted"])
    store = create_store(api, eager)
    with eager():
        api.post(f"/api/stores/{store.id}/upgrade/")
    with eager():
        api.delete(f"/api/stores/{store.id}/")
    cluster.helm_faults({"command": "upgrade", "action": "fail", "stderr": "boom"})
    failed = create_store(api, eager, "Broken Shop")  # store.failed: not subscribed
    assert Store.objects.get(pk=failed.id).status == "failed"
    with eager():
        api.post(f"/api/stores/{failed.id}/retry/")  # the fault was used up: ready

    with eager():
        pump_until(lambda: WebhookDelivery.objects.filter(status="succeeded").count() == 4)
    requests = receiver.wait_for(4)
    assert len(requests) == 4
    payloads = [verified(r, created["secret"]) for r in requests]
    assert [p["type"] for p in payloads] == [
        "store.ready", "store.upgraded", "store.deleted", "store.ready"]
    ids = [r.headers["webhook-id"] for r in requests]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert [p["id"] for p in payloads] == ids
    first = payloads[0]["data"]
    assert first["store"]["id"] == store.id and first["store"]["name"] == "Acme Shop"
    assert first["status_to"] == "ready"
    assert first["store_page"].endswith(f"/stores/{store.id}/")
    assert payloads[2]["data"]["store"]["status"] == "deleted"
    assert payloads[3]["data"]["store"]["id"] == failed.id
    # A signature made with another secret does not verify.
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(requests[0].body, requests[0].headers)
    # Nothing is sent twice when the outbox runs again.
    notifications.pump()
    time.sleep(0.2)
    assert len(receiver.requests) == 4


def test_a_failed_delivery_is_retried_with_the_same_id_until_it_succeeds(
        api, receiver, cluster, eager, settings, client):
    settings.WEBHOOK_RETRY_BASE = 0.2
    receiver.answers = [500, 500]
    created = register(api, receiver.url, ["store.ready"])
    store = create_store(api, eager)
    with eager():
        pump_until(lambda: WebhookDelivery.objects.filter(status="succeeded").exists())
    requests = receiver.wait_for(3)
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    for request in requests:
        assert verified(request, created["secret"])["data"]["store"]["id"] == store.id
    # Exponential backoff: the second wait is about twice the first.
    stamps = [a.started_at for a in DeliveryAttempt.objects.order_by("id")]
    assert stamps[1] - stamps[0] >= timedelta(seconds=0.2)
    assert stamps[2] - stamps[1] >= timedelta(seconds=0.4)

    log = api.get(f"/api/webhooks/{created['id']}/deliveries/").json()["results"]
    [delivery] = log
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 3
    assert [(a["attempt"], a["status_code"]) for a in delivery["attempt_log"]] == [
        (1, 500), (2, 500), (3, 200)]
    assert delivery["attempt_log"][0]["response_excerpt"] == "answered 500"
    assert all(a["duration_ms"] is not None for a in delivery["attempt_log"])
    assert WebhookEndpoint.objects.get().failing_since is None  # a success resets it

    client.force_login(store.owner)
    page = client.get(f"/accounts/webhooks/{created['id']}/").content.decode()
    assert "HTTP 500" in page and "HTTP 200" in page and "answered 500" in page

    metrics = client.get("/metrics").content.decode()
    assert 'storeplatform_webhook_deliveries_total{outcome="failed"}' in metrics
    assert 'storeplatform_webhook_deliveries_total{outcome="delivered"}' in metrics
    assert 'storeplatform_webhook_retries_total{outcome="failed"}' in metrics
    assert 'storeplatform_webhook_retries_total{outcome="delivered"}' in metrics
    assert 'storeplatform_webhook_deliveries{status="succeeded"} 1.0' in metrics


def test_a_delivery_gives_up_after_the_retry_window(api, receiver, settings, eager):
    settings.WEBHOOK_RETRY_BASE = 0.2
    settings.WEBHOOK_RETRY_WINDOW = 1
    receiver.answers = [503] * 20
    created = register(api, receiver.url)
    webhooks.send_test_event(WebhookEndpoint.objects.get())
    with eager():
        pump_until(lambda: WebhookDelivery.objects.filter(status="failed").exists())
    delivery = api.get(f"/api/webhooks/{created['id']}/deliveries/").json()["results"][0]
    assert delivery["status"] == "failed"
    assert 2 <= delivery["attempts"] <= 4
    assert {a["status_code"] for a in delivery["attempt_log"]} == {503}


def test_an_endpoint_failing_for_a_day_is_disabled_and_its_owner_told(
        api, user, receiver, smtp, settings, eager):
    user.email = "alice@example.com"
    user.save()
    settings.WEBHOOK_RETRY_BASE = 0.2
    settings.WEBHOOK_DISABLE_AFTER = 1  # "a day", shortened
    receiver.answers = [500] * 50
    created = register(api, receiver.url)
    endpoint = WebhookEndpoint.objects.get()
    webhooks.send_test_event(endpoint)
    with eager():
        pump_until(lambda: not WebhookEndpoint.objects.get().enabled)
    assert 2 <= WebhookDelivery.objects.get().attempts <= 4
    with eager():
        pump_until(lambda: OutgoingEmail.objects.filter(status="sent").exists())
    endpoint.refresh_from_db()
    assert "Every delivery failed since" in endpoint.disabled_reason
    assert WebhookDelivery.objects.get().status == "cancelled"
    [mail] = smtp.wait_for("alice@example.com")
    assert mail.subject == f"Webhook endpoint disabled: {receiver.url}"
    assert f"/accounts/webhooks/{endpoint.pk}/" in mail.body

    # Nothing more is sent to it; the test button says why.
    response = api.post(f"/api/webhooks/{created['id']}/test/")
    assert response.status_code == 409
    assert response.json()["detail"] == "The endpoint is disabled; enable it first."
    # Enabling it again starts afresh.
    response = api.patch(f"/api/webhooks/{created['id']}/", {"enabled": True}, format="json")
    assert response.json()["enabled"] is True and response.json()["failing_since"] is None


def test_the_test_button_and_redelivery_send_the_same_message_again(
        client, user, api, receiver, eager):
    created = register(api, receiver.url)
    client.force_login(user)
    with eager():
        response = client.post(f"/accounts/webhooks/{created['id']}/test/")
    assert response.status_code == 302
    [first] = receiver.wait_for(1)
    payload = verified(first, created["secret"])
    assert payload["type"] == "webhook.test"

    delivery = WebhookDelivery.objects.get()
    with eager():
        response = api.post(
            f"/api/webhooks/{created['id']}/deliveries/{delivery.pk}/redeliver/")
    assert response.status_code == 202
    assert response.json()["redelivery_of"] == delivery.pk
    second = receiver.wait_for(2)[1]
    assert second.headers["webhook-id"] == first.headers["webhook-id"]
    assert second.body == first.body
    assert verified(second, created["secret"]) == payload
    page = client.get(f"/accounts/webhooks/{created['id']}/").content.decode()
    assert page.count(f'data-event-id="{first.headers["webhook-id"]}"') == 2
    assert "redelivery" in page


def test_a_rotated_secret_signs_alongside_the_old_one_for_a_while(api, receiver, eager):
    created = register(api, receiver.url)
    rotated = api.post(f"/api/webhooks/{created['id']}/rotate-secret/").json()
    assert rotated["secret"] != created["secret"]
    with eager():
        api.post(f"/api/webhooks/{created['id']}/test/")
    [request] = receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verified(request, rotated["secret"])["type"] == "webhook.test"
    assert verified(request, created["secret"])["type"] == "webhook.test"


@pytest.mark.django_db(transaction=True)
def test_deliveries_to_one_endpoint_go_out_one_at_a_time(api, receiver):
    """Two workers asked to deliver to the same endpoint: one does it, the
    other finds the endpoint taken, so messages do not overtake each other."""
    register(api, receiver.url)
    endpoint = WebhookEndpoint.objects.get()
    for _ in range(3):
        webhooks.send_test_event(endpoint)
    results = []

    def worker():
        results.append(webhooks.deliver_endpoint(endpoint.pk))
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 3]
    ids = [r.headers["webhook-id"] for r in receiver.wait_for(3)]
    assert ids == list(WebhookDelivery.objects.order_by("id").values_list("event_id",
                                                                            flat=True))[:3]


# -- e-mail notifications ----------------------------------------------------------
def test_a_failure_is_mailed_to_the_owner_with_a_link_and_a_ready_store_is_not(
        api, user, smtp, cluster, eager, settings):
    settings.PLATFORM_URL = "https://stores.example.com"
    user.email = "alice@example.com"
    user.save()
    create_store(api, eager, "Good Shop")
    cluster.helm_faults({"command": "upgrade", "action": "fail", "stderr": "boom"})
    failed = create_store(api, eager, "Broken Shop")
    with eager():
        pump_until(lambda: OutgoingEmail.objects.filter(status="sent").exists())
    [mail] = smtp.wait_for("alice@example.com")
    assert mail.subject.startswith("[storeplatform] Broken Shop: store failed")
    assert f"https://stores.example.com/stores/{failed.id}/" in mail.body
    assert "boom" in mail.body or "helm" in mail.body
    time.sleep(0.2)
    assert len(smtp.to("alice@example.com")) == 1  # "ready" is not mailed by default


def test_an_endpoint_is_deleted_after_a_confirmation_page(client, user, api, receiver):
    created = register(api, receiver.url)
    client.force_login(user)
    page = client.get(f"/accounts/webhooks/{created['id']}/delete/")
    assert "cannot be undone" in page.content.decode()
    assert WebhookEndpoint.objects.exists()
    response = client.post(f"/accounts/webhooks/{created['id']}/delete/")
    assert response.status_code == 302
    assert not WebhookEndpoint.objects.exists()


def test_the_account_page_and_the_delivery_log_cost_the_same_at_any_size(
        client, user, api, receiver, django_assert_num_queries):
    created = register(api, receiver.url)
    endpoint = WebhookEndpoint.objects.get()
    for _ in range(5):
        delivery = webhooks.send_test_event(endpoint)
        DeliveryAttempt.objects.create(delivery=delivery, number=1, status_code=500)
        DeliveryAttempt.objects.create(delivery=delivery, number=2, status_code=200)
    client.force_login(user)
    with django_assert_num_queries(4):  # session, user, account, endpoints
        assert client.get("/accounts/").status_code == 200
    with django_assert_num_queries(5):  # session, user, endpoint, deliveries, attempts
        assert client.get(f"/accounts/webhooks/{created['id']}/").status_code == 200
    with django_assert_num_queries(4):  # token, endpoint, deliveries, attempts
        log = api.get(f"/api/webhooks/{created['id']}/deliveries/").json()["results"]
    assert len(log) == 5 and all(len(d["attempt_log"]) == 2 for d in log)
