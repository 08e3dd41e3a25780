"""/healthz says the process is up; /readyz says which dependency is not."""

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_touching_anything(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"


def test_readyz_checks_database_redis_and_helm(client, settings, real_helm_bin):
    settings.HELM_BIN = real_helm_bin
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


def test_readyz_names_the_dependency_that_failed(client, settings):
    settings.HELM_BIN = "/nonexistent/helm"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["checks"]["helm"] == {"ok": False,
                                      "detail": "helm binary not found: /nonexistent/helm"}
    assert body["checks"]["database"]["ok"] is True
