"""A person in a real browser signs up, verifies the address with the link
the SMTP server received, creates a store, then forgets the password and
resets it with the mailed link."""

import pytest

from stores.models import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery-9"
NEW_PASSWORD = "staple-lantern-orbit-42"


def test_sign_up_verify_create_a_store_and_reset_the_password(chromium, live_server, smtp,
                                                              settings, worker, cluster):
    settings.STORE_SIGNUP = "open"
    page = chromium.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{live_server.url}/login/")
    page.click("nav >> text=Sign up")
    page.fill("input[name=email]", "carol@example.com")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("button:has-text('Sign up')")
    page.wait_for_selector("#verify-banner")
    assert "We sent a link to carol@example.com" in page.inner_text("main")

    # Before verifying, the create form says what to do.
    page.goto(f"{live_server.url}/")
    page.fill("input[name=name]", "Browser Shop")
    page.click("text=Create store")
    page.wait_for_selector("text=Verify your e-mail address first")
    assert not Store.objects.exists()

    [mail] = smtp.wait_for("carol@example.com")
    page.goto(mail.link())
    page.wait_for_selector("text=carol@example.com is verified")
    page.click("text=Your stores")
    page.fill("input[name=name]", "Browser Shop")
    page.select_option("select[name=engine]", "woocommerce")
    page.click("text=Create store")
    page.wait_for_selector("h1:has-text('Browser Shop')")
    page.wait_for_selector("#store-header [data-status=ready]", timeout=90_000)

    page.click("button:has-text('Sign out')")
    page.goto(f"{live_server.url}/login/")
    page.click("text=Forgot your password?")
    page.fill("input[name=email]", "carol@example.com")
    page.click("button:has-text('Send the link')")
    page.wait_for_selector("text=Check your inbox")
    reset = smtp.wait_for("carol@example.com", count=2)[1]
    assert reset.subject == "Reset your storeplatform password"
    page.goto(reset.link())
    page.fill("input[name=new_password1]", NEW_PASSWORD)
    page.fill("input[name=new_password2]", NEW_PASSWORD)
    page.click("button:has-text('Save the new password')")
    page.wait_for_selector("text=Your password is changed")

    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "carol@example.com")
    page.fill("input[name=password]", NEW_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Browser Shop")
    # The used link does not work a second time.
    page.goto(reset.link())
    page.wait_for_selector("text=expired or was already used")
