"""Webhooks over https: the request goes to the address that was checked,
with the URL's host name for SNI and certificate verification. A receiver
on loopback serves a certificate from a CA made for the test, which the
process trusts through SSL_CERT_FILE (OpenSSL's own variable)."""

import datetime
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks.webhooks import Webhook

from stores import webhooks
from stores.models import DeliveryAttempt, WebhookEndpoint

pytestmark = pytest.mark.django_db


def _certificate(name, key, issuer_name, issuer_key, *, ca=False, san=None):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture
def tls_receiver(tmp_path, monkeypatch, settings):
    """An https receiver on 127.0.0.1 whose certificate names ``localhost``."""
    settings.WEBHOOK_TEST_ALLOW_LOOPBACK = True
    settings.WEBHOOK_REQUIRE_HTTPS = True
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "storeplatform test CA")])
    ca = _certificate("storeplatform test CA", ca_key, ca_name, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _certificate("localhost", key, ca_name, ca_key, san="localhost")
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], received
    server.shutdown()
    server.server_close()


def test_an_https_endpoint_gets_a_verified_connection_under_its_own_name(api, tls_receiver):
    port, received = tls_receiver
    created = api.post("/api/webhooks/", {"url": f"https://localhost:{port}/hooks",
                                          "event_types": ["store.ready"]}, format="json")
    assert created.status_code == 201, created.content
    webhooks.send_test_event(WebhookEndpoint.objects.get())
    webhooks.deliver_endpoint(created.json()["id"])
    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code == 204, attempt.error
    headers, body = received[0]
    assert headers["host"] == f"localhost:{port}"
    assert Webhook(created.json()["secret"]).verify(body, headers)["type"] == "webhook.test"


def test_a_certificate_for_another_name_is_refused(api, tls_receiver, settings):
    port, received = tls_receiver
    # 127.0.0.1 is the same server, but the certificate names "localhost".
    created = api.post("/api/webhooks/", {"url": f"https://127.0.0.1:{port}/hooks",
                                          "event_types": ["store.ready"]}, format="json")
    webhooks.send_test_event(WebhookEndpoint.objects.get())
    webhooks.deliver_endpoint(created.json()["id"])
    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code is None
    assert "certificate" in attempt.error.lower() or "hostname" in attempt.error.lower(), (
        attempt.error)
    assert received == []
