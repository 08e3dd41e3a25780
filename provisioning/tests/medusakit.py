"""What the two Medusa run tests share: the container environment as the
chart renders it, a client that shops and administers through Medusa's HTTP
APIs, and a real SMTP server on loopback that collects the store's mail.

``test_medusa_app.py`` runs the app natively, ``test_medusa_image.py`` runs
the image in podman; both take the environment from ``helm template`` of
charts/medusa, never from a hand-written copy.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import yaml

from provisioning.tests import chartkit
from provisioning.tests.chartkit import DEPLOY_VALUES, ROOT

APP_DIR = ROOT / "images" / "medusa"
FIXTURES = Path(__file__).parent / "fixtures" / "medusa"
STORE_VALUES = FIXTURES / "store-values.yaml"
ON_CI = os.environ.get("CI", "").lower() == "true"
RELEASE = "store-test"
# The store's public URL as the chart renders it (fixtures/medusa/store-values.yaml).
PUBLIC_URL = "http://acme-shop.localtest.me"
STORE_NAME = "Acme Shop"

# What the platform puts in the store's Secret (docs/chart-contract.md), and
# the operator's relay password Secret.
SECRET = {
    "admin-username": "admin",
    "admin-email": "owner@acme-shop.test",
    "admin-password": "Admin-pass-7f3k2",
    "db-password": "Db-pass_9x2Lq",
    "db-root-password": "Root-pass_1a2b3",
    "jwt-secret": "jwt-secret-for-the-medusa-tests",
    "cookie-secret": "cookie-secret-for-the-medusa-tests",
}
SMTP_SECRET = "smtp-relay"
SMTP_USER = "store-mailer"
SMTP_PASSWORD = "relay-Pass-4k9"
SECRETS = {"store-credentials": SECRET, SMTP_SECRET: {"password": SMTP_PASSWORD}}


def missing(what: str) -> None:
    """A missing tool fails on CI (it must be installed there) and skips elsewhere."""
    if ON_CI:
        pytest.fail(f"{what} (CI=true requires it)")
    pytest.skip(what)


# --- the chart's environment ----------------------------------------------------


def rendered_containers(extra_values: dict, workdir: Path) -> dict[str, dict]:
    """The Medusa pod's containers (``setup``, ``medusa``) as ``helm template``
    renders them with the local profile, the generated store values and
    ``extra_values`` (e.g. the SMTP relay)."""
    extra = workdir / "extra-values.yaml"
    extra.write_text(yaml.safe_dump(extra_values))
    docs = chartkit.render(
        "medusa", [DEPLOY_VALUES / "medusa-local.yaml", STORE_VALUES, extra], release=RELEASE
    )
    [server] = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-medusa")
    ]
    spec = server["spec"]["template"]["spec"]
    return {c["name"]: c for c in spec["initContainers"] + spec["containers"]}


def container_env(container: dict, replacements: dict[str, str]) -> dict[str, str]:
    """What the container starts with (secrets resolved, ``$(VAR)`` expanded
    as the kubelet does), with in-cluster addresses swapped for loopback ones
    (``replacements``: old substring -> new)."""
    env = chartkit.container_env(container, SECRETS)
    for name, value in env.items():
        for old, new in replacements.items():
            value = value.replace(old, new)
        env[name] = value
    return env


# --- a real SMTP server on loopback ---------------------------------------------


@dataclass
class ReceivedMail:
    mail_from: str
    recipients: list[str]
    message: EmailMessage
    tls: bool
    login: str | None

    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""


class SmtpSink:
    """aiosmtpd on 127.0.0.1 that keeps every message it accepts. With
    ``tls_dir`` it offers STARTTLS with a certificate of a CA it writes there
    (``ca_path``, for NODE_EXTRA_CA_CERTS), requires it, and requires AUTH
    with ``SMTP_USER`` / ``SMTP_PASSWORD``."""

    def __init__(self, hostname: str = "127.0.0.1", tls_dir: Path | None = None):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        from storeplatform.devservices import free_port

        self.messages: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self.port = free_port()
        self.hostname = hostname
        self.ca_path: Path | None = None
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                mail = ReceivedMail(
                    mail_from=envelope.mail_from,
                    recipients=list(envelope.rcpt_tos),
                    message=message_from_bytes(envelope.original_content, policy=policy.default),
                    tls=session.ssl is not None,
                    login=session.auth_data.login.decode() if session.authenticated else None,
                )
                with sink._lock:
                    sink.messages.append(mail)
                return "250 Message accepted for delivery"

        kwargs: dict = {}
        if tls_dir is not None:
            self.ca_path, context = _tls_context(tls_dir, hostname)

            def authenticate(server, session, envelope, mechanism, auth_data):
                ok = isinstance(auth_data, LoginPassword) and (
                    auth_data.login.decode(),
                    auth_data.password.decode(),
                ) == (SMTP_USER, SMTP_PASSWORD)
                # Kept on the session, so the test can see who logged in.
                return AuthResult(success=ok, auth_data=auth_data)

            kwargs = {
                "tls_context": context,
                "require_starttls": True,
                "authenticator": authenticate,
                "auth_require_tls": True,
            }
        self._controller = Controller(Handler(), hostname=hostname, port=self.port, **kwargs)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def wait_for(self, recipient: str, timeout: float = 90) -> ReceivedMail:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for mail in self.messages:
                    if recipient in mail.recipients:
                        return mail
            time.sleep(0.5)
        raise AssertionError(
            f"no mail to {recipient} within {timeout}s; got mail to "
            f"{[m.recipients for m in self.messages]}"
        )


def _tls_context(directory: Path, hostname: str) -> tuple[Path, ssl.SSLContext]:
    """A throwaway CA and a server certificate for ``hostname`` signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "medusa test SMTP CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(hostname))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return ca_path, context


# --- Medusa's HTTP APIs -----------------------------------------------------------


@dataclass
class StoreApi:
    """Talks to one running Medusa: ``base_url`` is where it listens; with
    ``host`` every request carries that Host header, as the ingress sends it."""

    base_url: str
    host: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def request(self, method: str, path_or_url: str, **kwargs) -> requests.Response:
        url = path_or_url if "://" in path_or_url else f"{self.base_url}{path_or_url}"
        headers = dict(kwargs.pop("headers", None) or {})
        if self.host:
            headers.setdefault("Host", self.host)
        return requests.request(method, url, headers=headers, timeout=60, **kwargs)

    def fetch_public(self, public_url: str) -> requests.Response:
        """GET a link the store handed out, the way a browser would reach it:
        through the ingress to this server, with the link's host."""
        parts = urlsplit(public_url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return requests.get(
            f"{self.base_url}{path}", headers={"Host": parts.netloc}, timeout=60
        )

    def store_headers(self) -> dict[str, str]:
        key = self.request("GET", "/storefront/config").json()["publishable_key"]
        return {"x-publishable-api-key": key}

    def admin_headers(self) -> dict[str, str]:
        response = self.request(
            "POST",
            "/auth/user/emailpass",
            json={"email": SECRET["admin-email"], "password": SECRET["admin-password"]},
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def admin_get(self, path: str, **params) -> dict:
        response = self.request("GET", path, headers=self.admin_headers(), params=params)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    def call(self, method: str, path: str, headers: dict, **kwargs) -> dict:
        response = self.request(method, path, headers=headers, **kwargs)
        assert response.status_code == 200, (
            f"{method} {path}: {response.status_code} {response.text}"
        )
        return response.json()

    def admin_orders(self) -> list[dict]:
        return self.admin_get("/admin/orders", limit=100, fields="id,display_id,email,total")[
            "orders"
        ]

    def upload(self, filename: str, content: bytes, mime_type: str) -> dict:
        """Upload one file through the Admin API, as the dashboard does for a
        product image; returns Medusa's ``{id, url}``."""
        response = self.request(
            "POST",
            "/admin/uploads",
            headers=self.admin_headers(),
            files={"files": (filename, content, mime_type)},
        )
        assert response.status_code == 200, f"upload: {response.status_code} {response.text}"
        [uploaded] = response.json()["files"]
        return uploaded

    def place_order(self, email: str, quantity: int = 2) -> dict:
        """Cart, address, shipping, manual payment and completion through the
        Store API, as the storefront does."""
        headers = self.store_headers()
        [region] = self.call("GET", "/store/regions", headers)["regions"]
        products = self.call(
            "GET",
            "/store/products",
            headers,
            params={"region_id": region["id"], "fields": "*variants.calculated_price"},
        )["products"]
        variant = products[0]["variants"][0]
        assert variant["calculated_price"]["calculated_amount"] > 0

        cart = self.call("POST", "/store/carts", headers, json={"region_id": region["id"]})[
            "cart"
        ]
        cart = self.call(
            "POST",
            f"/store/carts/{cart['id']}/line-items",
            headers,
            json={"variant_id": variant["id"], "quantity": quantity},
        )["cart"]
        address = {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "address_1": "Unter den Linden 1",
            "city": "Berlin",
            "postal_code": "10117",
            "country_code": "de",
        }
        cart = self.call(
            "POST",
            f"/store/carts/{cart['id']}",
            headers,
            json={"email": email, "shipping_address": address, "billing_address": address},
        )["cart"]
        options = self.call(
            "GET", "/store/shipping-options", headers, params={"cart_id": cart["id"]}
        )["shipping_options"]
        [standard] = [o for o in options if o["name"] == "Standard shipping"]
        self.call(
            "POST",
            f"/store/carts/{cart['id']}/shipping-methods",
            headers,
            json={"option_id": standard["id"]},
        )
        collection = self.call(
            "POST", "/store/payment-collections", headers, json={"cart_id": cart["id"]}
        )["payment_collection"]
        self.call(
            "POST",
            f"/store/payment-collections/{collection['id']}/payment-sessions",
            headers,
            json={"provider_id": "pp_system_default"},
        )
        result = self.call("POST", f"/store/carts/{cart['id']}/complete", headers)
        assert result["type"] == "order", result
        return result["order"]

    def wait_until_healthy(self, process_alive, timeout: float = 300) -> None:
        """Poll /health until it answers OK; ``process_alive()`` returning an
        error text stops the wait with that text."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            problem = process_alive()
            if problem:
                raise AssertionError(problem)
            try:
                if self.request("GET", "/health").status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"Medusa did not answer /health within {timeout:.0f}s")


def assert_order_confirmation(mail: ReceivedMail, order: dict, sender: str) -> None:
    """The confirmation the order-placed subscriber sends (src/lib/order-email.ts)."""
    assert mail.mail_from == sender
    assert mail.recipients == [order["email"]]
    assert mail.message["Subject"] == f"{STORE_NAME}: order #{order['display_id']} confirmed"
    body = mail.body()
    assert f"thank you for your order #{order['display_id']} at {STORE_NAME}" in body
    for item in order["items"]:
        assert f"  {item['quantity']} x {item['title']}" in body, body
    assert "Total: €" in body, body
