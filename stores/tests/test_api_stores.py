"""The REST API contract: endpoints, fields, status codes, isolation."""

import pytest

from stores import constants as c
from stores.models import AuditEntry, Store

pytestmark = pytest.mark.django_db

STORE_FIELDS = {"id", "name", "engine", "status", "status_reason", "storefront_url", "admin_url",
                "created_at", "updated_at", "ready_at", "primary_url", "domains"}


def create(client, name="Acme Shop", engine="woocommerce"):
    return client.post("/api/stores/", {"name": name, "engine": engine}, format="json")


def test_creating_a_store_answers_202_with_the_store(api):
    response = create(api)
    assert response.status_code == 202
    body = response.json()
    assert set(body) >= STORE_FIELDS
    assert body["status"] == c.REQUESTED
    assert body["storefront_url"] == body["primary_url"] == "http://acme-shop.localtest.me/"
    assert body["domains"] == []
    assert body["admin_url"] == "http://acme-shop.localtest.me/wp-admin/"
    assert Store.objects.get(pk=body["id"]).namespace == f"store-{body['id']}"


def test_store_ids_are_dns_safe_and_hosts_unique(api, other_api):
    first = create(api, "Acme Shop").json()
    second = create(other_api, "ACME shop!").json()
    assert first["id"] != second["id"]
    for body in (first, second):
        assert len(body["id"]) == 10 and body["id"].isalnum() and body["id"].islower()
    assert second["storefront_url"] == "http://acme-shop-2.localtest.me/"


def test_the_host_follows_the_configured_pattern(api, settings):
    settings.STORE_BASE_DOMAIN = "shops.example.com"
    settings.STORE_HOST_PATTERN = "{slug}-store.{base_domain}"
    settings.STORE_SCHEME = "https"
    body = create(api, "Café Olé").json()
    assert body["storefront_url"] == "https://cafe-ole-store.shops.example.com/"


def test_the_list_shows_only_the_callers_stores(api, other_api):
    create(api, "Mine One")
    create(other_api, "Theirs")
    names = [s["name"] for s in api.get("/api/stores/").json()["results"]]
    assert names == ["Mine One"]


def test_staff_see_every_store(api, other_api, staff_api):
    create(api, "Mine One")
    create(other_api, "Theirs")
    names = {s["name"] for s in staff_api.get("/api/stores/").json()["results"]}
    assert names == {"Mine One", "Theirs"}


def test_the_list_is_paginated_newest_first(api, settings):
    settings.STORE_MAX_PER_USER = 30
    for n in range(27):
        create(api, f"Shop {n:02d}")
    first = api.get("/api/stores/").json()
    assert len(first["results"]) == 25
    assert first["results"][0]["name"] == "Shop 26"
    second = api.get(first["next"]).json()
    assert [s["name"] for s in second["results"]] == ["Shop 01", "Shop 00"]
    assert second["next"] is None


def test_listing_takes_the_same_number_of_queries_for_1_or_25_stores(
    api, settings, django_assert_max_num_queries
):
    settings.STORE_MAX_PER_USER = 30
    create(api, "Only One")
    with django_assert_max_num_queries(4):  # token, stores (owner joined), their domains
        api.get("/api/stores/")
    for n in range(24):
        create(api, f"Shop {n:02d}")
    with django_assert_max_num_queries(4):
        assert len(api.get("/api/stores/").json()["results"]) == 25


def test_deleted_stores_leave_the_list_but_can_still_be_fetched(api):
    store_id = create(api).json()["id"]
    Store.objects.filter(pk=store_id).update(status=c.DELETED)
    assert api.get("/api/stores/").json()["results"] == []
    assert api.get(f"/api/stores/{store_id}/").json()["status"] == c.DELETED
    deleted = api.get("/api/stores/?status=deleted").json()["results"]
    assert [s["id"] for s in deleted] == [store_id]


def test_someone_elses_store_does_not_exist_for_you(api, other_api):
    store_id = create(other_api).json()["id"]
    for response in (
        api.get(f"/api/stores/{store_id}/"),
        api.delete(f"/api/stores/{store_id}/"),
        api.post(f"/api/stores/{store_id}/retry/"),
        api.get(f"/api/stores/{store_id}/events/"),
        api.get(f"/api/stores/{store_id}/credentials/"),
    ):
        assert response.status_code == 404
    assert Store.objects.get(pk=store_id).status == c.REQUESTED


def test_deleting_answers_202_and_moves_to_deleting(api):
    store_id = create(api).json()["id"]
    response = api.delete(f"/api/stores/{store_id}/")
    assert response.status_code == 202
    assert response.json()["status"] == c.DELETING
    # Asking again is the same request, not an error.
    assert api.delete(f"/api/stores/{store_id}/").status_code == 202


def test_only_failed_stores_can_be_retried(api):
    store_id = create(api).json()["id"]
    response = api.post(f"/api/stores/{store_id}/retry/")
    assert response.status_code == 409
    assert "Only failed stores can be retried" in response.json()["detail"]
    Store.objects.filter(pk=store_id).update(status=c.FAILED)
    response = api.post(f"/api/stores/{store_id}/retry/")
    assert response.status_code == 202
    assert response.json()["status"] == c.REQUESTED


def test_events_list_the_timeline_in_order(api):
    store_id = create(api).json()["id"]
    api.delete(f"/api/stores/{store_id}/")
    events = api.get(f"/api/stores/{store_id}/events/").json()["results"]
    assert [(e["status_from"], e["status_to"]) for e in events] == [
        ("", c.REQUESTED), (c.REQUESTED, c.DELETING)
    ]
    assert events[0]["actor"] == "api:alice"


def test_credentials_are_for_the_owner_only(api, staff_api, cluster, eager):
    with eager():
        store_id = create(api).json()["id"]
    creds = api.get(f"/api/stores/{store_id}/credentials/")
    assert creds.status_code == 200
    body = creds.json()
    assert body["username"] == "admin"
    assert body["admin_url"].endswith("/wp-admin/")
    assert len(body["password"]) >= 20
    # Staff can see the store but not log into its shop.
    assert staff_api.get(f"/api/stores/{store_id}/").status_code == 200
    assert staff_api.get(f"/api/stores/{store_id}/credentials/").status_code == 404
    assert AuditEntry.objects.filter(action="view_credentials", store_id=store_id).count() == 1


def test_credentials_before_provisioning_are_a_clear_conflict(api):
    store_id = create(api).json()["id"]
    response = api.get(f"/api/stores/{store_id}/credentials/")
    assert response.status_code == 409
    assert "no credentials yet" in response.json()["detail"]


def test_a_token_is_issued_for_a_username_and_password(client, user):
    response = client.post("/api/auth/token/", {"username": "alice",
                                                "password": "alice-password-1"})
    assert response.status_code == 200
    token = response.json()["token"]
    listing = client.get("/api/stores/", HTTP_AUTHORIZATION=f"Token {token}")
    assert listing.status_code == 200


def test_session_auth_works_for_signed_in_users(client, user):
    client.force_login(user)
    assert client.get("/api/stores/").status_code == 200


def test_the_openapi_schema_describes_the_store_endpoints(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in ("/api/stores/", "/api/stores/{id}/", "/api/stores/{id}/retry/",
                 "/api/stores/{id}/events/", "/api/stores/{id}/credentials/",
                 "/api/auth/token/"):
        assert path in paths, path
    assert "202" in paths["/api/stores/"]["post"]["responses"]
    assert "TokenAuth" in str(schema["components"]["securitySchemes"]) or \
        "tokenAuth" in schema["components"]["securitySchemes"]


def test_the_interactive_docs_are_served_without_a_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html
