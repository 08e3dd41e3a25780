"""Sign-up, e-mail verification, invitations, password reset and deleting an
account, through the pages, with a real SMTP server on loopback receiving
the mails whose links the tests then follow."""

import re
import time
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model

from stores import constants as c
from stores.models import Account, AuditEntry, Invitation, Store

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"


@pytest.fixture
def open_signup(settings):
    settings.STORE_SIGNUP = "open"


def sign_up(client, email="Carol@Example.com", password=PASSWORD, **extra):
    return client.post("/accounts/signup/", {"email": email, "password1": password,
                                             "password2": password, **extra})


def signs_in(client, username: str, password: str) -> bool:
    """Through the sign-in page, as a person does (django-axes counts it)."""
    response = client.post("/login/", {"username": username, "password": password})
    return response.status_code == 302


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def users():
    return get_user_model().objects


# -- open sign-up and verification ---------------------------------------------
def test_a_person_signs_up_verifies_by_the_mailed_link_and_then_creates_a_store(
        client, smtp, open_signup):
    response = sign_up(client)
    assert response.status_code == 302 and response["Location"] == "/accounts/"
    user = users().get(email="carol@example.com")
    assert user.username == "carol@example.com"
    assert AuditEntry.objects.filter(action="signup", actor=user).exists()

    # Signed in, but no store before the address is verified.
    response = client.post("/stores/new/", {"name": "Carol Shop", "engine": "woocommerce"})
    assert (response.status_code, response["Location"]) == (302, "/")  # the refusal is shown there
    assert "Verify your e-mail address first" in client.get("/").content.decode()
    assert not Store.objects.exists()
    assert "not verified" in client.get("/accounts/").content.decode()

    [mail] = smtp.wait_for("carol@example.com")
    assert mail.subject == "Verify your address for storeplatform"
    link = mail.link()
    assert "/accounts/verify/" in link
    page = client.get(path_of(link))
    assert page.status_code == 200
    assert "carol@example.com is verified" in page.content.decode()
    assert Account.objects.get(user=user).email_verified_at is not None

    response = client.post("/stores/new/", {"name": "Carol Shop", "engine": "woocommerce"})
    assert response.status_code == 302
    assert Store.objects.get().owner == user

    # The link worked once.
    again = client.get(path_of(link))
    assert again.status_code == 410
    assert "already verified" in again.content.decode()


def test_a_verification_link_expires(client, smtp, open_signup, settings):
    sign_up(client)
    link = smtp.wait_for("carol@example.com")[0].link()
    settings.PASSWORD_RESET_TIMEOUT = 1
    time.sleep(2.1)
    page = client.get(path_of(link))
    assert page.status_code == 410
    assert "expired" in page.content.decode()
    assert Account.objects.get().email_verified_at is None


def test_a_tampered_verification_link_is_refused(client, smtp, open_signup):
    sign_up(client)
    link = smtp.wait_for("carol@example.com")[0].link()
    page = client.get(path_of(link)[:-3] + "xx/")
    assert page.status_code == 410
    assert Account.objects.get().email_verified_at is None
    assert client.get("/accounts/verify/not-base64/abc-def/").status_code == 404


def test_a_new_verification_link_can_be_sent_and_replaces_nothing_else(
        client, smtp, open_signup):
    sign_up(client)
    smtp.wait_for("carol@example.com")
    response = client.post("/accounts/verify/resend/")
    assert response.status_code == 302
    second = smtp.wait_for("carol@example.com", count=2)[1]
    assert client.get(path_of(second.link())).status_code == 200


def test_accounts_made_by_an_operator_need_no_verification(client, user, cluster):
    client.force_login(user)
    response = client.post("/stores/new/", {"name": "Alice Shop", "engine": "woocommerce"})
    assert response.status_code == 302


# -- bad input: nothing is created -------------------------------------------
def test_a_taken_address_is_refused_whatever_its_case(client, smtp, open_signup, user):
    user.email = "alice@example.com"
    user.save()
    response = sign_up(client, email="ALICE@example.com")
    assert response.status_code == 400
    assert "This address already has an account" in response.content.decode()
    assert users().count() == 1
    assert smtp.to("alice@example.com") == []


@pytest.mark.parametrize(("password", "message"), [
    ("short1!", "This password is too short. It must contain at least 10 characters."),
    ("password123", "This password is too common."),
    ("4815162342108", "This password is entirely numeric."),
    ("carol@example.com", "The password is too similar to the"),
])
def test_a_weak_password_is_refused_with_djangos_reason(client, open_signup, password,
                                                        message):
    response = sign_up(client, password=password)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not users().exists() and not Account.objects.exists()


def test_mismatched_passwords_and_a_bad_address_are_refused(client, open_signup):
    response = client.post("/accounts/signup/", {
        "email": "carol@example.com", "password1": PASSWORD, "password2": PASSWORD + "x"})
    assert response.status_code == 400
    assert "The two password fields" in response.content.decode()
    response = sign_up(client, email="not-an-address")
    assert "Enter a valid email address." in response.content.decode()
    assert not users().exists()


def test_sign_up_is_rate_limited_per_ip(client, open_signup, settings):
    settings.RATELIMIT_ENABLE = True
    settings.SIGNUP_RATE = "2/m"
    assert sign_up(client, email="a1@example.com").status_code == 302
    client.logout()
    assert sign_up(client, email="a2@example.com").status_code == 302
    client.logout()
    response = sign_up(client, email="a3@example.com")
    assert response.status_code == 429
    assert "Too many sign-up requests" in response.content.decode()
    assert int(response["Retry-After"]) > 0
    assert not users().filter(email="a3@example.com").exists()


# -- closed and invite modes ---------------------------------------------------
def test_closed_sign_up_says_so_and_creates_nothing(client, settings):
    settings.STORE_SIGNUP = "closed"
    page = client.get("/accounts/signup/")
    assert page.status_code == 403
    assert "Sign-up is closed" in page.content.decode()
    assert sign_up(client).status_code == 403
    assert not users().exists()
    assert "Sign up" not in client.get("/login/").content.decode()


def test_an_invitation_from_admin_signs_up_its_address_once(client, smtp, settings, staff):
    settings.STORE_SIGNUP = "invite"
    assert sign_up(client).status_code == 403  # no invitation, no account

    operator = client
    operator.force_login(staff)
    response = operator.post("/admin/stores/invitation/add/",
                             {"email": "Dave@Example.com", "note": "Welcome aboard."})
    assert response.status_code == 302, response.content.decode()[:2000]
    operator.logout()
    invitation = Invitation.objects.get()
    assert invitation.email == "dave@example.com" and invitation.sent_at is not None
    [mail] = smtp.wait_for("dave@example.com")
    assert "Welcome aboard." in mail.body
    link = path_of(mail.link())

    page = client.get(link)
    assert page.status_code == 200 and "You were invited" in page.content.decode()
    # Someone else's address with this link: refused.
    response = client.post(link, {"email": "eve@example.com", "password1": PASSWORD,
                                  "password2": PASSWORD})
    assert response.status_code == 400
    assert "the address the invitation was sent to" in response.content.decode()

    response = client.post(link, {"email": "dave@example.com", "password1": PASSWORD,
                                  "password2": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    dave = users().get(email="dave@example.com")
    assert Account.objects.get(user=dave).is_verified
    assert Invitation.objects.get().accepted_by == dave

    client.logout()
    again = client.get(link)
    assert again.status_code == 410
    assert "already used" in again.content.decode()


def test_an_expired_or_forged_invitation_is_refused(client, smtp, settings, staff):
    settings.STORE_SIGNUP = "invite"
    client.force_login(staff)
    client.post("/admin/stores/invitation/add/", {"email": "dave@example.com"})
    client.logout()
    link = path_of(smtp.wait_for("dave@example.com")[0].link())
    forged = client.get(link[:-4] + "abcd")
    assert forged.status_code == 404 and "not valid" in forged.content.decode()
    settings.INVITATION_MAX_AGE = 1
    time.sleep(2.1)
    expired = client.get(link)
    assert expired.status_code == 410 and "expired" in expired.content.decode()
    assert sign_up(client, email="dave@example.com",
                   invite=link.split("invite=")[1]).status_code == 410
    assert not users().filter(email="dave@example.com").exists()


def test_an_invitation_to_a_taken_address_is_refused_in_admin(client, staff, smtp, settings):
    settings.STORE_SIGNUP = "invite"
    staff.email = "ops@example.com"
    staff.save()
    client.force_login(staff)
    response = client.post("/admin/stores/invitation/add/", {"email": "OPS@example.com"})
    assert response.status_code == 200
    assert "ops@example.com already has an account." in response.content.decode()
    assert not Invitation.objects.exists()


# -- password reset ----------------------------------------------------------
def test_a_forgotten_password_is_reset_with_the_mailed_link_once(client, smtp, user):
    user.email = "alice@example.com"
    user.save()
    response = client.post("/accounts/password_reset/", {"email": "alice@example.com"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password_reset/done/"
    [mail] = smtp.wait_for("alice@example.com")
    link = path_of(mail.link())
    assert link.startswith("/accounts/reset/")

    form = client.get(link, follow=True)
    assert "Choose a new password" in form.content.decode()
    form_url = form.redirect_chain[-1][0]
    weak = client.post(form_url, {"new_password1": "alice", "new_password2": "alice"})
    assert "This password is too short" in weak.content.decode()
    done = client.post(form_url, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/accounts/reset/done/"
    assert signs_in(client, "alice", PASSWORD)
    client.logout()

    reused = client.get(link, follow=True)
    assert "expired or was already used" in reused.content.decode()


def test_a_reset_for_an_unknown_address_looks_the_same_and_sends_nothing(client, smtp):
    response = client.post("/accounts/password_reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password_reset/done/"
    time.sleep(0.3)
    assert smtp.mails == []


def test_password_resets_are_rate_limited_per_address(client, smtp, user, settings):
    settings.RATELIMIT_ENABLE = True
    settings.PASSWORD_RESET_RATE = "2/m"
    user.email = "alice@example.com"
    user.save()
    for _ in range(2):
        assert client.post("/accounts/password_reset/",
                           {"email": "alice@example.com"}).status_code == 302
    response = client.post("/accounts/password_reset/", {"email": "alice@example.com"})
    assert response.status_code == 429
    assert "Too many password reset requests" in response.content.decode()
    assert len(smtp.wait_for("alice@example.com", count=2)) == 2
    time.sleep(0.3)
    assert len(smtp.to("alice@example.com")) == 2


def test_a_signed_in_user_changes_their_password(client, user):
    client.force_login(user)
    response = client.post("/accounts/password_change/", {
        "old_password": "alice-password-1", "new_password1": PASSWORD,
        "new_password2": PASSWORD})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


# -- the account page and deleting the account ---------------------------------
def test_the_account_page_links_tokens_and_saves_email_choices(client, user):
    client.force_login(user)
    html = client.get("/accounts/").content.decode()
    assert 'href="/accounts/tokens/"' in html
    # Failures and deletions are mailed by default, the rest is not.
    assert re.search(r'value="store.failed" id="id_email_events_\d+" checked', html)
    assert 'value="store.ready" id="id_email_events_0">' in html
    response = client.post("/accounts/notifications/", {"email_events": ["store.ready"]})
    assert response.status_code == 302
    assert Account.objects.get(user=user).email_events == ["store.ready"]
    bad = client.post("/accounts/notifications/", {"email_events": ["store.exploded"]})
    assert bad.status_code == 400
    assert Account.objects.get(user=user).email_events == ["store.ready"]


def test_deleting_an_account_is_refused_while_it_has_live_stores_naming_them(client, user):
    client.force_login(user)
    live = Store.objects.create(owner=user, name="Alice Shop", slug="alice-shop",
                                host="alice-shop.localtest.me", engine="woocommerce",
                                status=c.READY)
    Store.objects.create(owner=user, name="Old Shop", slug="old-shop", status=c.DELETED,
                         host="old-shop.localtest.me", engine="woocommerce")
    response = client.post("/accounts/delete/", {"password": "alice-password-1"})
    assert response.status_code == 409
    html = response.content.decode()
    assert f"Delete your stores first: Alice Shop ({live.id}) still exists." in html
    assert "Old Shop" not in html
    assert users().filter(pk=user.pk).exists()

    wrong = client.post("/accounts/delete/", {"password": "nope"})
    assert wrong.status_code == 400 and "That is not your password." in wrong.content.decode()

    Store.objects.filter(pk=live.pk).update(status=c.DELETED)
    response = client.post("/accounts/delete/", {"password": "alice-password-1"})
    assert response.status_code == 200
    assert "Your account is deleted" in response.content.decode()
    assert not users().filter(pk=user.pk).exists()
    assert AuditEntry.objects.filter(action="delete_account", actor_name="alice").exists()
    assert client.get("/accounts/").status_code == 302  # signed out


def test_a_new_address_takes_over_only_once_its_link_is_opened(client, smtp, open_signup,
                                                                other_user):
    other_user.email = "bob@example.com"
    other_user.save()
    sign_up(client)
    client.get(path_of(smtp.wait_for("carol@example.com")[0].link()))  # verified
    bad = client.post("/accounts/email/", {"email": "carol2@example.com", "password": "x"})
    assert "That is not your password." in bad.content.decode()
    taken = client.post("/accounts/email/", {"email": "BOB@example.com", "password": PASSWORD})
    assert "That address belongs to another account." in taken.content.decode()

    response = client.post("/accounts/email/", {"email": "Carol2@Example.com",
                                                "password": PASSWORD})
    assert response.status_code == 302
    user = users().get(email="carol@example.com")  # unchanged until the link is opened
    assert "We sent a link to carol2@example.com" in client.get("/accounts/").content.decode()
    [mail] = smtp.wait_for("carol2@example.com")
    assert "switch to it" in mail.body
    page = client.get(path_of(mail.link()))
    assert page.status_code == 200, page.content.decode()
    user.refresh_from_db()
    assert (user.email, user.username) == ("carol2@example.com", "carol2@example.com")
    assert client.get(path_of(mail.link())).status_code == 410  # once
    client.logout()
    assert signs_in(client, "carol2@example.com", PASSWORD)
