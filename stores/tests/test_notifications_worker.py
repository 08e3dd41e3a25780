"""The outbox with real processes: a Celery worker provisions stores on the
fake cluster, beat runs the outbox, and the owner hears about it through a
webhook receiver and an SMTP server on loopback, retries included."""

import pytest
from standardwebhooks.webhooks import Webhook

from stores.models import OutgoingEmail, Store, WebhookDelivery

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_beat_and_a_worker_tell_the_owner_by_webhook_and_mail(
        api, user, cluster, start_celery, receiver, smtp, wait_for):
    user.email = "alice@example.com"
    user.save()
    env = {"WEBHOOK_TEST_ALLOW_LOOPBACK": "true", "NOTIFY_INTERVAL": "0.5",
           "WEBHOOK_RETRY_BASE": "0.3", "PLATFORM_URL": "https://stores.example.com",
           **smtp.env}
    start_celery("worker", **env)
    start_celery("beat", **env)
    receiver.answers = [500, 500]
    endpoint = api.post("/api/webhooks/", {"url": receiver.url,
                                           "event_types": ["store.ready", "store.failed"]},
                        format="json").json()

    ready = api.post("/api/stores/", {"name": "Acme Shop", "engine": "woocommerce"},
                     format="json").json()
    wait_for(lambda: Store.objects.get(pk=ready["id"]).status == "ready", timeout=90,
             message="the store never became ready")
    first = receiver.wait_for(3, timeout=60)  # 500, 500, then 200
    assert len({r.headers["webhook-id"] for r in first}) == 1
    payload = Webhook(endpoint["secret"]).verify(first[-1].body, first[-1].headers)
    assert payload["type"] == "store.ready"
    assert payload["data"]["store"]["id"] == ready["id"]

    cluster.helm_faults({"command": "upgrade", "action": "fail", "stderr": "chart exploded"})
    failed = api.post("/api/stores/", {"name": "Broken Shop", "engine": "woocommerce"},
                      format="json").json()
    requests = receiver.wait_for(4, timeout=90)
    payload = Webhook(endpoint["secret"]).verify(requests[3].body, requests[3].headers)
    assert payload["type"] == "store.failed"
    assert payload["data"]["store"]["id"] == failed["id"]
    assert payload["data"]["reason"] == "helm_failed"
    assert requests[3].headers["webhook-id"] > requests[0].headers["webhook-id"]

    # Failures are mailed by default; "ready" is not.
    [mail] = smtp.wait_for("alice@example.com", timeout=60)
    assert "Broken Shop: store failed" in mail.subject
    assert f"https://stores.example.com/stores/{failed['id']}/" in mail.body
    # The server has the mail a moment before the worker records it as sent.
    wait_for(lambda: OutgoingEmail.objects.get().status == "sent", timeout=10)
    wait_for(lambda: list(WebhookDelivery.objects.values_list("status", flat=True)) == [
        "succeeded", "succeeded"], timeout=10)
