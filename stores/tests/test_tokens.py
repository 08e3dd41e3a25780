"""API tokens are passwords: hashed at rest with a prefix for display,
shown once, with an expiry, a last-used time and revoke; owners manage them
on /accounts/tokens/, operators can revoke but never read them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from stores.models import ApiToken, AuditEntry

pytestmark = pytest.mark.django_db


def sign_in(client, username="alice", password="alice-password-1"):
    return client.post("/api/auth/token/", {"username": username, "password": password},
                       content_type="application/json")


def test_a_program_signs_in_for_a_token_that_is_stored_only_as_a_hash(client, user):
    response = sign_in(client)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "prefix", "expiry"}
    assert "no-store" in response["Cache-Control"]
    row = ApiToken.objects.get(user=user)
    assert body["token"].startswith(body["prefix"]) and row.token_key == body["prefix"]
    # Nothing stored gives the token back.
    stored = [str(value) for value in ApiToken.objects.filter(user=user).values().get().values()]
    assert not any(body["token"] in value for value in stored)
    assert row.expiry - timezone.now() == pytest.approx(timedelta(hours=24), abs=timedelta(
        minutes=1))
    listing = client.get("/api/stores/", HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert listing.status_code == 200


def test_the_form_encoded_sign_in_of_the_readme_still_works(client, user):
    response = client.post("/api/auth/token/", {"username": "alice",
                                                "password": "alice-password-1"})
    assert response.status_code == 200 and response.json()["token"]


def test_a_wrong_password_gets_no_token(client, user):
    response = sign_in(client, password="wrong")
    assert response.status_code == 400
    assert "Unable to sign in" in response.json()["detail"]
    assert not ApiToken.objects.exists()


def test_an_expired_token_is_refused(client, user):
    token = sign_in(client).json()["token"]
    ApiToken.objects.filter(user=user).update(expiry=timezone.now() - timedelta(seconds=1))
    response = client.get("/api/stores/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 401


def test_the_last_use_is_recorded_once_a_minute_at_most(client, user,
                                                        django_assert_max_num_queries):
    token = sign_in(client).json()["token"]
    assert ApiToken.objects.get(user=user).last_used_at is None
    client.get("/api/stores/", HTTP_AUTHORIZATION=f"Token {token}")
    first = ApiToken.objects.get(user=user).last_used_at
    assert first is not None
    with django_assert_max_num_queries(2):  # token and user, stores: no write
        client.get("/api/stores/", HTTP_AUTHORIZATION=f"Token {token}")
    assert ApiToken.objects.get(user=user).last_used_at == first


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


def test_an_owner_creates_a_token_on_the_tokens_page_and_sees_it_once(browser, user):
    response = browser.post("/accounts/tokens/", {"name": "CI deploys", "days": "30"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    token = response.context["new_token"]
    assert token in response.content.decode()
    row = ApiToken.objects.get(user=user)
    assert row.name == "CI deploys"
    assert (row.expiry - timezone.now()).days == 29
    page = browser.get("/accounts/tokens/").content.decode()
    assert token not in page  # shown once
    assert f"{row.prefix}…" in page and "CI deploys" in page and "never" in page
    assert AuditEntry.objects.filter(action="create_token", actor=user).exists()


def test_the_tokens_page_refuses_a_lifetime_it_does_not_offer(browser, user):
    response = browser.post("/accounts/tokens/", {"name": "forever", "days": "36500"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_an_owner_revokes_a_token_and_it_stops_working(browser, client, user):
    token = browser.post("/accounts/tokens/", {"name": "laptop", "days": "7"}
                         ).context["new_token"]
    prefix = ApiToken.objects.get(user=user).prefix
    assert browser.post(f"/accounts/tokens/{prefix}/revoke/").status_code == 302
    assert not ApiToken.objects.exists()
    browser.logout()
    assert client.get("/api/stores/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 401


def test_nobody_revokes_someone_elses_token(client, user, other_user):
    ApiToken.objects.create(user=other_user, name="theirs", expiry=None)
    prefix = ApiToken.objects.get().prefix
    client.force_login(user)
    client.post(f"/accounts/tokens/{prefix}/revoke/")
    assert ApiToken.objects.count() == 1
    assert "theirs" not in client.get("/accounts/tokens/").content.decode()


def test_operators_can_revoke_but_never_read_a_token(client, staff, user):
    _, token = ApiToken.objects.create(user=user, name="laptop", expiry=None)
    row = ApiToken.objects.get()
    client.force_login(staff)
    listing = client.get("/admin/stores/apitoken/").content.decode()
    assert "laptop" in listing and row.prefix in listing
    # Admin's links use the row's key, knox's SHA-512 digest of the token,
    # which cannot be turned back into it; the token is nowhere.
    assert token not in listing
    assert client.get("/admin/stores/apitoken/add/").status_code == 403
    change = client.get(f"/admin/stores/apitoken/{row.pk}/change/").content.decode()
    assert token not in change
    assert 'name="name"' not in change and 'name="expiry' not in change  # read-only
    client.post("/admin/stores/apitoken/", {"action": "delete_selected",
                                            "_selected_action": [row.pk], "post": "yes"})
    assert not ApiToken.objects.exists()
    assert AuditEntry.objects.filter(action="revoke_token", via="admin").exists()


def test_drfs_plaintext_token_admin_is_gone(client, staff):
    client.force_login(staff)
    assert client.get("/admin/authtoken/").status_code == 404
