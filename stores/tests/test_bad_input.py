"""Bad input gets the right 4xx with a message that says what to fix, and
nothing is created: no store, no event, no audit entry, no task."""

import pytest

from stores.models import AuditEntry, Store, StoreEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def nothing_is_created():
    yield
    assert Store.objects.count() == 0
    assert StoreEvent.objects.count() == 0
    assert AuditEntry.objects.count() == 0


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ab", "at least 3 characters"),
        ("x" * 41, "at most 40 characters"),
        ("   ", "at least 3 characters"),
        ("!!!", "at least one letter (a-z) or digit"),
        ("日本語の店", "at least one letter (a-z) or digit"),
        ("bad\x07name", "control characters"),
        ("bad\x00name", "Null characters are not allowed"),
    ],
)
def test_names_that_cannot_make_a_web_address_are_refused(api, name, message):
    response = api.post("/api/stores/", {"name": name, "engine": "woocommerce"}, format="json")
    assert response.status_code == 400
    assert message in str(response.json())


def test_a_name_must_be_a_string(api):
    response = api.post("/api/stores/", {"name": 12345, "engine": "woocommerce"}, format="json")
    assert response.status_code == 400


def test_an_unknown_engine_is_refused_with_the_choices(api):
    response = api.post("/api/stores/", {"name": "Acme", "engine": "shopify"}, format="json")
    assert response.status_code == 400
    assert "medusa" in str(response.json()) and "woocommerce" in str(response.json())


def test_an_engine_whose_chart_is_incomplete_is_refused(api, settings, tmp_path):
    (tmp_path / "woocommerce").mkdir()
    (tmp_path / "woocommerce" / "Chart.yaml").write_text("name: woocommerce\nversion: 0.0.1\n")
    settings.CHARTS_DIR = tmp_path
    response = api.post("/api/stores/", {"name": "Acme", "engine": "woocommerce"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "engine"
    assert "not available yet" in body["detail"]
    assert "values.schema.json" in body["detail"]


def test_unknown_fields_are_refused_by_name(api):
    response = api.post("/api/stores/", {"name": "Acme", "engine": "medusa", "replicas": 9},
                        format="json")
    assert response.status_code == 400
    assert "replicas" in response.json()
    assert "Unknown field" in str(response.json())


def test_missing_fields_are_named(api):
    response = api.post("/api/stores/", {}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"name", "engine"}


def test_a_body_that_is_not_json_is_refused(api):
    response = api.post("/api/stores/", "name=Acme", content_type="text/plain")
    assert response.status_code == 415
    response = api.post("/api/stores/", "{not json", content_type="application/json")
    assert response.status_code == 400
    response = api.post("/api/stores/", ["Acme"], format="json")
    assert response.status_code == 400


def test_an_oversized_body_is_refused_before_parsing(api):
    response = api.post("/api/stores/", {"name": "Acme", "engine": "medusa", "x": "y" * 20000},
                        format="json")
    assert response.status_code == 413
    assert "limit is" in response.json()["detail"]


def test_missing_or_wrong_auth_is_401(client):
    assert client.post("/api/stores/", {"name": "Acme", "engine": "medusa"},
                       content_type="application/json").status_code == 401
    response = client.get("/api/stores/", HTTP_AUTHORIZATION="Token not-a-token")
    assert response.status_code == 401
    assert "Invalid token" in response.json()["detail"]


def test_an_unknown_store_id_is_404(api):
    assert api.get("/api/stores/doesnotexist/").status_code == 404
    assert api.delete("/api/stores/doesnotexist/").status_code == 404
