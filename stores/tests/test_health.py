"""/healthz says the process is up; /readyz says which dependency is not."""

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_touching_anything(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"


def test_readyz_checks_database_redis_and_helm(client, settings, real_helm_bin, staff):
    settings.HELM_BIN = real_helm_bin
    client.force_login(staff)  # details are for operators (test_secrets_and_probes)
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert set(body["checks"]) == {"database", "redis", "helm"}
    assert body["checks"]["helm"]["detail"].startswith("v4.")


def test_probes_and_scrapes_by_pod_ip_are_answered(client):
    # Kubelets and Prometheus send the pod's IP as Host, not an allowed host.
    assert client.get("/healthz", HTTP_HOST="10.42.0.7:8000").status_code == 200
    assert client.get("/metrics", HTTP_HOST="10.42.0.7:8000").status_code == 200
    assert client.get("/", HTTP_HOST="10.42.0.7:8000").status_code == 400


def test_readyz_names_the_dependency_that_failed(client, settings, staff):
    settings.HELM_BIN = "/nonexistent/helm"
    client.force_login(staff)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["checks"]["helm"] == {"ok": False,
                                      "detail": "helm binary not found: /nonexistent/helm"}
    assert body["checks"]["database"]["ok"] is True


def queue_depth(client) -> float | None:
    for line in client.get("/metrics").content.decode().splitlines():
        if line.startswith('storeplatform_celery_queue_depth{queue="celery"}'):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.mark.django_db(transaction=True)
def test_metrics_count_the_tasks_waiting_in_celerys_queue(client, api):
    before = queue_depth(client)
    assert before is not None
    for name in ("Queued One", "Queued Two"):  # no worker runs: both wait
        assert api.post("/api/stores/", {"name": name, "engine": "woocommerce"},
                        format="json").status_code == 202
    assert queue_depth(client) == before + 2


def test_a_broker_that_does_not_answer_gives_no_queue_sample_not_a_zero(client, caplog):
    from storeplatform.celery import app

    configured = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:9/0"  # nothing listens on the discard port
    try:
        response = client.get("/metrics")
    finally:
        app.conf.broker_url = configured
    assert response.status_code == 200
    assert "storeplatform_celery_queue_depth{" not in response.content.decode()
    assert "could not read the Celery queue depths" in caplog.text
