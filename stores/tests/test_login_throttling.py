"""Sign-ins are throttled per account and per address (django-axes) on the
API, the sign-in page and admin's: 429 with Retry-After, a cool-off after
which the right password works again, and a form that says so."""

import time
from datetime import timedelta

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def throttled(settings):
    settings.AXES_FAILURE_LIMIT = 5


def token_sign_in(client, password, username="alice", **extra):
    return client.post("/api/auth/token/", {"username": username, "password": password},
                       content_type="application/json", **extra)


def test_a_hundred_wrong_passwords_are_stopped_early(client, user):
    codes = [token_sign_in(client, f"guess-{n}").status_code for n in range(100)]
    assert codes[:4] == [400] * 4
    assert codes.index(429) == 4  # the fifth failure locks
    assert set(codes[4:]) == {429}
    response = token_sign_in(client, "alice-password-1")
    assert response.status_code == 429  # the right password waits for the cool-off too
    assert 1 <= int(response["Retry-After"]) <= 900
    assert "Too many failed sign-ins" in response.json()["detail"]


def test_the_right_password_works_after_the_cool_off(client, user, settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=3)
    for n in range(5):
        token_sign_in(client, f"guess-{n}")
    response = token_sign_in(client, "alice-password-1")
    assert response.status_code == 429
    assert int(response["Retry-After"]) <= 3
    time.sleep(3.1)
    assert token_sign_in(client, "alice-password-1").status_code == 200


def test_failures_during_the_lockout_do_not_extend_it(client, user, settings):
    # Otherwise an attacker could keep the owner out for ever.
    settings.AXES_COOLOFF_TIME = timedelta(seconds=3)
    for n in range(5):
        token_sign_in(client, f"guess-{n}")
    time.sleep(1.5)
    assert token_sign_in(client, "another-guess").status_code == 429
    time.sleep(1.6)  # 3.1 s after the last counted failure, 1.6 s after the refused one
    assert token_sign_in(client, "alice-password-1").status_code == 200


def test_the_lock_is_per_account_across_addresses(client, user):
    for n in range(5):
        token_sign_in(client, f"guess-{n}", REMOTE_ADDR=f"198.51.100.{n}")
    response = token_sign_in(client, "alice-password-1", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 429


def test_the_lock_is_per_address_across_accounts(client, user, other_user):
    for n in range(5):
        token_sign_in(client, "guess", username=f"nobody-{n}", REMOTE_ADDR="198.51.100.7")
    locked = token_sign_in(client, "bob-password-1", username="bob", REMOTE_ADDR="198.51.100.7")
    assert locked.status_code == 429
    elsewhere = token_sign_in(client, "bob-password-1", username="bob",
                              REMOTE_ADDR="203.0.113.9")
    assert elsewhere.status_code == 200


def test_the_sign_in_page_says_why_and_keeps_the_user_name(client, user):
    for n in range(4):
        assert client.post("/login/", {"username": "alice", "password": f"x{n}"}
                           ).status_code == 200
    response = client.post("/login/", {"username": "alice", "password": "x5"})
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    html = response.content.decode()
    assert "Too many failed sign-ins" in html and "try again in 15 minutes" in html
    assert 'value="alice"' in html


def test_admins_sign_in_is_throttled_too(client, staff):
    for n in range(5):
        client.post("/admin/login/", {"username": "ops", "password": f"x{n}"})
    response = client.post("/admin/login/", {"username": "ops", "password": "ops-password-1"})
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert 'value="ops"' in response.content.decode()


def test_a_failed_password_is_not_kept_in_the_attempt_records(client, user):
    from axes.models import AccessAttempt

    client.post("/login/", {"username": "alice", "password": "alice-password-2"})
    attempt = AccessAttempt.objects.get()
    assert "alice-password-2" not in attempt.post_data + attempt.get_data
