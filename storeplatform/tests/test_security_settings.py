"""Production security settings: `check --deploy` is clean with the documented
defaults, and a page carries the headers; the dev stack keeps plain http.

settings.py is executed afresh under a production environment (as the
chart's ConfigMap sets it: DJANGO_DEBUG=false, HTTPS) and its security
settings are applied to this process, so what is checked is what the module
computes from the environment, not a copy of its values.
"""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest
from django.core.management import call_command

from storeplatform.tests.locks import ROOT

STRONG_KEY = "k7Qm2vX9pL4sT8wZ1nB6cR3fY5hJ0dG-production-like-secret-key"
# Everything `check --deploy` and the security middlewares read.
SECURITY_PREFIXES = ("SECURE_", "SESSION_COOKIE_", "CSRF_COOKIE_", "CONTENT_SECURITY_POLICY")
SECURITY_NAMES = {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "PERMISSIONS_POLICY", "X_FRAME_OPTIONS"}


def load_settings(monkeypatch, **env: str) -> ModuleType:
    # A production platform always has a credentials key of its own.
    env.setdefault("STORE_CREDENTIALS_KEY", "credentials-key-of-its-own-for-the-test")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("settings_under_test",
                                                  ROOT / "storeplatform" / "settings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def apply(settings, module: ModuleType) -> None:
    for name in dir(module):
        if name in SECURITY_NAMES or name.startswith(SECURITY_PREFIXES):
            setattr(settings, name, getattr(module, name))
    if not hasattr(module, "CONTENT_SECURITY_POLICY"):
        del settings.CONTENT_SECURITY_POLICY
    if not hasattr(module, "SECURE_PROXY_SSL_HEADER"):
        settings.SECURE_PROXY_SSL_HEADER = None


@pytest.fixture
def production(settings, monkeypatch) -> ModuleType:
    module = load_settings(monkeypatch, DJANGO_DEBUG="false", DJANGO_SECRET_KEY=STRONG_KEY,
                           DJANGO_ALLOWED_HOSTS="platform.example.com")
    apply(settings, module)
    return module


def test_check_deploy_is_clean_with_the_production_defaults(production):
    # Any warning raises SystemCheckError.
    call_command("check", deploy=True, fail_level="WARNING")


def test_check_deploy_warns_when_the_https_settings_are_turned_off(settings, monkeypatch):
    apply(settings, load_settings(
        monkeypatch, DJANGO_DEBUG="false", DJANGO_SECRET_KEY=STRONG_KEY,
        DJANGO_SECURE_SSL_REDIRECT="false", DJANGO_SECURE_HSTS_SECONDS="0",
    ))
    from django.core.management.base import SystemCheckError

    with pytest.raises(SystemCheckError, match=r"(?s)security\.W004.*security\.W008"):
        call_command("check", deploy=True, fail_level="WARNING")


@pytest.mark.django_db
def test_a_page_over_https_carries_every_security_header(production, client):
    response = client.get("/login/", HTTP_HOST="platform.example.com",
                          HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]
    header = response["Content-Security-Policy"]
    policy = dict(part.strip().split(" ", 1) for part in header.split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["default-src"] == "'self'"
    assert policy["object-src"] == policy["base-uri"] == policy["frame-ancestors"] == "'none'"
    csrf = response.cookies["csrftoken"]
    assert csrf["secure"] and csrf["httponly"]


@pytest.mark.django_db
def test_the_session_cookie_is_secure_and_http_only(production, client, user):
    response = client.post("/login/", {"username": "alice", "password": "alice-password-1"},
                           HTTP_HOST="platform.example.com", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"]


@pytest.mark.django_db
def test_plain_http_is_redirected_to_https_but_probes_are_answered(production, client):
    response = client.get("/login/", HTTP_HOST="platform.example.com")
    assert response.status_code == 301
    assert response["Location"] == "https://platform.example.com/login/"
    # Kubelet probes come over plain http with Host: localhost.
    assert client.get("/healthz", HTTP_HOST="localhost").status_code == 200


def test_every_https_setting_is_read_from_the_environment(monkeypatch):
    module = load_settings(
        monkeypatch, DJANGO_DEBUG="false", DJANGO_SECRET_KEY=STRONG_KEY,
        DJANGO_SECURE_SSL_REDIRECT="false", DJANGO_SECURE_PROXY_SSL_HEADER="false",
        DJANGO_SECURE_HSTS_SECONDS="600", DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="false",
        DJANGO_SECURE_HSTS_PRELOAD="false", SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false", DJANGO_REFERRER_POLICY="no-referrer",
        PERMISSIONS_POLICY="camera=()", DJANGO_CSP_REPORT_ONLY="true",
    )
    assert module.SECURE_SSL_REDIRECT is False
    assert not hasattr(module, "SECURE_PROXY_SSL_HEADER")
    assert module.SECURE_HSTS_SECONDS == 600
    assert module.SECURE_HSTS_INCLUDE_SUBDOMAINS is module.SECURE_HSTS_PRELOAD is False
    assert module.SESSION_COOKIE_SECURE is module.CSRF_COOKIE_SECURE is False
    assert module.SECURE_REFERRER_POLICY == "no-referrer"
    assert module.PERMISSIONS_POLICY == "camera=()"
    assert not hasattr(module, "CONTENT_SECURITY_POLICY")
    assert module.CONTENT_SECURITY_POLICY_REPORT_ONLY["DIRECTIVES"]["script-src"] == ["'self'"]


@pytest.mark.django_db
def test_the_report_only_switch_sends_the_policy_as_a_report(settings, monkeypatch, client):
    apply(settings, load_settings(monkeypatch, DJANGO_CSP_REPORT_ONLY="true"))
    response = client.get("/login/")
    assert "Content-Security-Policy" not in response
    assert "script-src 'self'" in response["Content-Security-Policy-Report-Only"]


@pytest.mark.django_db
def test_the_dev_stack_defaults_keep_plain_http(settings, monkeypatch, client):
    # DEBUG on (the default): no redirect, no HSTS, cookies not Secure; the
    # Content-Security-Policy is the production one, so pages are tried under it.
    for name in ("DJANGO_DEBUG", "DJANGO_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    module = load_settings(monkeypatch)
    assert module.DEBUG is True
    apply(settings, module)
    response = client.get("/login/")
    assert response.status_code == 200
    assert "Strict-Transport-Security" not in response
    assert not response.cookies["csrftoken"]["secure"]
    assert "script-src 'self'" in response["Content-Security-Policy"]
