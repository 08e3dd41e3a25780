"""Abuse limits: a per-user cap on live stores, enforced atomically, and
rate limits on create and delete (Redis-backed) with Retry-After."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from stores import constants as c
from stores.models import Quota, Store

pytestmark = pytest.mark.django_db


def create(client, name):
    return client.post("/api/stores/", {"name": name, "engine": "woocommerce"}, format="json")


def test_a_user_cannot_hold_more_than_the_default_cap(api, settings):
    settings.STORE_MAX_PER_USER = 2
    assert create(api, "One").status_code == 202
    assert create(api, "Two").status_code == 202
    response = create(api, "Three")
    assert response.status_code == 409
    assert "2 of your 2 allowed stores" in response.json()["detail"]


def test_deleted_stores_free_their_place(api, settings):
    settings.STORE_MAX_PER_USER = 1
    store_id = create(api, "One").json()["id"]
    Store.objects.filter(pk=store_id).update(status=c.DELETED)
    assert create(api, "Two").status_code == 202


def test_a_quota_row_overrides_the_default_for_one_user(api, user, settings):
    settings.STORE_MAX_PER_USER = 1
    Quota.objects.create(user=user, max_stores=3)
    assert [create(api, f"Shop {n}").status_code for n in range(4)] == [202, 202, 202, 409]


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_creates_make_exactly_the_allowed_number(user, settings):
    settings.STORE_MAX_PER_USER = 3
    from conftest import api_token

    token = api_token(user)
    barrier = threading.Barrier(20)
    codes = []

    def post(n):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        barrier.wait()
        try:
            codes.append(create(client, f"Race {n}").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [202] * 3 + [409] * 17
    assert Store.objects.filter(owner=user).count() == 3


def test_creating_too_fast_gets_429_with_retry_after(api, settings):
    settings.RATELIMIT_ENABLE = True
    settings.STORE_CREATE_RATE = "2/m"
    settings.STORE_MAX_PER_USER = 10
    assert create(api, "One").status_code == 202
    assert create(api, "Two").status_code == 202
    response = create(api, "Three")
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert "Too many create requests" in response.json()["detail"]
    assert Store.objects.count() == 2


def test_the_limit_is_per_ip_too(api, other_api, settings):
    settings.RATELIMIT_ENABLE = True
    settings.STORE_CREATE_RATE = "2/m"
    assert create(api, "One").status_code == 202
    assert create(api, "Two").status_code == 202
    # Another user from the same address is limited by the per-IP counter.
    assert create(other_api, "Three").status_code == 429
    other_api.defaults["REMOTE_ADDR"] = "10.1.2.3"
    assert create(other_api, "Four").status_code == 202


def test_deleting_too_fast_gets_429(api, settings):
    settings.RATELIMIT_ENABLE = True
    settings.STORE_DELETE_RATE = "1/m"
    settings.STORE_MAX_PER_USER = 5
    first, second = create(api, "One").json()["id"], create(api, "Two").json()["id"]
    assert api.delete(f"/api/stores/{first}/").status_code == 202
    response = api.delete(f"/api/stores/{second}/")
    assert response.status_code == 429
    assert "Retry-After" in response
    assert Store.objects.get(pk=second).status == c.REQUESTED


def test_the_page_shows_the_rate_limit_plainly(client, user, settings):
    settings.RATELIMIT_ENABLE = True
    settings.STORE_CREATE_RATE = "1/m"
    client.force_login(user)
    client.post("/stores/new/", {"name": "One", "engine": "woocommerce"})
    response = client.post("/stores/new/", {"name": "Two", "engine": "woocommerce"})
    assert response.status_code == 429
    assert "Too many create requests" in response.content.decode()
    assert int(response["Retry-After"]) >= 1


def test_behind_a_proxy_the_configured_header_is_the_client_address(api, other_api, settings):
    settings.RATELIMIT_ENABLE = True
    settings.STORE_CREATE_RATE = "1/m"
    settings.CLIENT_IP_HEADER = "HTTP_X_REAL_IP"
    api.defaults["HTTP_X_REAL_IP"] = "203.0.113.7"
    other_api.defaults["HTTP_X_REAL_IP"] = "203.0.113.8"
    # Same proxy address (REMOTE_ADDR), different clients: separate limits.
    assert create(api, "One").status_code == 202
    assert create(other_api, "Two").status_code == 202
    from stores.models import AuditEntry

    assert set(AuditEntry.objects.values_list("ip", flat=True)) == {"203.0.113.7",
                                                                   "203.0.113.8"}
