"""No input causes a 500 or a false 503: the probes of issue 14, each
answered with a 4xx (or a safe default) and a message. On PostgreSQL, as
the suite runs."""

import base64

import pytest
from django.db import connection

from stores import constants as c
from stores.models import Store

pytestmark = pytest.mark.django_db

DEEP_JSON = "[" * 1000 + "]" * 1000  # 2,000 bytes


@pytest.fixture
def store(user):
    return Store.objects.create(owner=user, name="Acme", slug="acme", host="acme.localtest.me",
                                engine="woocommerce", status=c.READY, helm_revision=1)


def test_the_suite_runs_these_on_postgresql():
    assert connection.vendor == "postgresql"


@pytest.mark.parametrize("path", ["/api/auth/token/", "/api/stores/", "ROLLBACK"])
def test_deeply_nested_json_is_a_400(client, api, store, path):
    if path == "ROLLBACK":
        path = f"/api/stores/{store.id}/rollback/"
    caller = client if path.startswith("/api/auth/") else api
    response = caller.post(path, DEEP_JSON, content_type="application/json")
    assert response.status_code == 400
    assert "nested more than" in response.json()["detail"]


def test_json_nesting_inside_strings_is_not_counted(api):
    name = "[" * 40
    response = api.post("/api/stores/", {"name": name, "engine": "woocommerce"}, format="json")
    assert response.status_code == 400
    assert "letter" in response.json()["name"][0]  # refused for the name, not the nesting


def test_nan_is_not_json(api, store):
    response = api.post(f"/api/stores/{store.id}/rollback/", '{"revision": NaN}',
                        content_type="application/json")
    assert response.status_code == 400


def cursor(position: str) -> str:
    return base64.b64encode(f"p={position}".encode()).decode()


CRAFTED = [
    "cD0wMDAxLTAxLTAxVDAwOjAwOjAwKzE0OjAw",  # p=0001-01-01T00:00:00+14:00 as sent
    cursor("0001-01-01T00:00:00%2B14:00"),  # the same time, offset kept
    cursor("9999-12-31T23:59:59-14:00"),
    cursor("2026-01-01T00:00:00"),  # no offset
    cursor("abc"), cursor("-1"), cursor("1e5"), cursor("99999999999999999999999"),
    cursor("9" * 5000),
    base64.b64encode(b"o=-1").decode(),
    base64.b64encode(b"o=1&r=x").decode(),
    "not base64!", "é",
]


@pytest.mark.parametrize("crafted", CRAFTED)
def test_crafted_cursors_are_a_400_on_both_lists(api, store, crafted):
    for path in ("/api/stores/", f"/api/stores/{store.id}/events/"):
        response = api.get(path, {"cursor": crafted})
        if response.status_code == 200:
            # Some decode to a usable position on one of the lists (an
            # event id of 99999... is not); a page is a fine answer then.
            assert crafted in (cursor("-1"), cursor("99999999999999999999999")), (path, crafted)
            continue
        assert response.status_code == 400, (path, crafted, response.content[:200])
        assert "Invalid cursor" in response.json()["detail"]


def test_real_cursors_still_page(api, settings, user):
    settings.STORE_MAX_PER_USER = 30
    for n in range(3):
        api.post("/api/stores/", {"name": f"Shop {n}", "engine": "woocommerce"}, format="json")
    first = api.get("/api/stores/", {"page_size": 2}).json()
    second = api.get(first["next"]).json()
    assert [s["name"] for s in second["results"]] == ["Shop 0"]


@pytest.mark.parametrize("size", ["0", "-1", "abc", "101", "1e2", "²", "9" * 5000])
def test_a_page_size_out_of_range_is_a_400(api, size):
    response = api.get("/api/stores/", {"page_size": size})
    assert response.status_code == 400
    assert "page_size" in response.json()


def test_an_unknown_status_filter_is_a_400(api):
    response = api.get("/api/stores/", {"status": "bogus"})
    assert response.status_code == 400
    assert "Unknown status" in response.json()["status"][0]


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


@pytest.mark.parametrize("query", [
    {"before": "0001-01-01T00:00:00+14:00"},
    {"before": "9999-12-31T23:59:59-14:00|zzz"},
    {"before": "2026-01-01T00:00:00|abc"},
    {"before": "\u0661\u0662"},
])
def test_the_dashboard_takes_any_before_value(browser, store, query):
    response = browser.get("/", query)
    assert response.status_code == 200
    assert response.context["first_page"] is True  # not a usable cursor: the first page


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                                   "2020-01-01T00:00:00", "garbage"])
def test_the_dashboard_fragment_refuses_an_unusable_since(browser, since):
    assert browser.get("/stores/changes/", {"since": since}).status_code == 400


@pytest.mark.parametrize("query", [
    {"after": "999999", "seen": "2020-01-01T00:00:00"},
    {"after": "99999999999999999999999", "seen": "9999-12-31T23:59:59-14:00"},
    {"after": "²", "seen": "0001-01-01T00:00:00+14:00"},
    {"after": "-5"},
])
def test_the_store_fragment_takes_any_cursor(browser, store, query):
    assert browser.get(f"/stores/{store.id}/changes/", query).status_code == 200


@pytest.mark.parametrize("revision", ["²", "³", "4" * 4400, "-1", "1.5", ""])
def test_the_rollback_form_explains_a_revision_that_is_not_one(browser, store, revision):
    response = browser.post(f"/stores/{store.id}/rollback/", {"revision": revision}, follow=True)
    assert response.status_code == 200
    assert "Choose a revision to roll back to" in response.content.decode()
    store.refresh_from_db()
    assert store.status == c.READY


@pytest.mark.parametrize("path", ["/api/stores/a%00b/", "/api/stores/?status=x%00y",
                                  "/api/stores/?cursor=%00", "/api/stores/abc%00defgh/events/"])
def test_a_nul_byte_in_the_api_is_a_400_not_a_false_outage(api, path, caplog):
    response = api.get(path)
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]
    assert "database unavailable" not in caplog.text


@pytest.mark.parametrize("path", ["/stores/a%00b/", "/stores/a%00b/changes/?after=1",
                                  "/stores/changes/?since=%00", "/?before=%00|x"])
def test_a_nul_byte_in_a_page_is_a_400(browser, path):
    assert browser.get(path).status_code == 400


@pytest.mark.parametrize("path", ["/admin/stores/store/a%00b/change/",
                                  "/admin/stores/store/?q=a%00b",
                                  "/admin/stores/store/?owner__id__exact=%00",
                                  "/admin/stores/auditentry/?store_id=%00"])
def test_a_nul_byte_in_admin_is_a_400(client, staff, path):
    client.force_login(staff)
    assert client.get(path).status_code == 400


def test_an_id_that_cannot_be_a_store_is_404_without_a_query(api, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):  # the token and its last use, no store
        assert api.get("/api/stores/Not-An-Id/").status_code == 404


def test_a_store_id_that_is_not_one_is_a_404_in_admin(client, staff):
    client.force_login(staff)
    response = client.get("/admin/stores/store/NOT-AN-ID/change/", follow=True)
    assert response.status_code == 200
    assert "doesn\u2019t exist" in response.content.decode()


def test_a_form_too_large_gets_a_page_that_explains_the_limit(client, settings):
    response = client.post("/login/", {"username": "x", "password": "y" * 20000})
    assert response.status_code == 413
    html = response.content.decode()
    assert f"at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes" in html
    assert "Nothing was saved" in html


def test_a_form_with_too_many_fields_is_explained_too(client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    response = client.post("/login/", {f"f{n}": "1" for n in range(20)})
    assert response.status_code == 413
    assert "at most 10 fields" in response.content.decode()
