"""Ready means valid HTTPS: the storefront probe against real local HTTPS
servers whose certificates the tests make with ``cryptography``."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from provisioning import probe

HOST = "shop.example.test"


class Storefront(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        body = f"storefront of {self.headers.get('Host')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def https_server():
    """Start an HTTPS server on loopback with the given certificate files."""
    servers = []

    def start(cert_file, key_file) -> int:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Storefront)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def through(settings):
    """Probe through an 'ingress controller' at this loopback port."""
    def use(port: int) -> None:
        settings.STORE_INGRESS_PROBE_URL = f"https://127.0.0.1:{port}"

    settings.STORE_PROBE_CA_FILE = ""
    return use


def test_a_self_signed_certificate_is_refused_with_the_reason(test_ca, https_server, through):
    through(https_server(*test_ca.self_signed(HOST)))
    result = probe.check(f"https://{HOST}/")
    assert not result.ok and result.certificate_error
    assert result.detail == f"its certificate is not valid for {HOST}: self-signed certificate"


def test_a_certificate_of_a_private_ca_is_accepted_only_with_that_ca_configured(
        test_ca, https_server, through, settings):
    through(https_server(*test_ca.issue([HOST])))
    refused = probe.check(f"https://{HOST}/")
    assert not refused.ok
    assert "unable to get local issuer certificate" in refused.detail

    settings.STORE_PROBE_CA_FILE = str(test_ca.ca_file)
    accepted = probe.check(f"https://{HOST}/")
    assert (accepted.ok, accepted.detail) == (True, "HTTP 200")


def test_a_certificate_for_another_name_is_refused(test_ca, https_server, through, settings):
    settings.STORE_PROBE_CA_FILE = str(test_ca.ca_file)
    through(https_server(*test_ca.issue(["other.example.test"])))
    result = probe.check(f"https://{HOST}/")
    assert not result.ok
    assert "Hostname mismatch" in result.detail and HOST in result.detail


def test_an_expired_certificate_is_refused(test_ca, https_server, through, settings):
    settings.STORE_PROBE_CA_FILE = str(test_ca.ca_file)
    through(https_server(*test_ca.issue([HOST], expired=True)))
    result = probe.check(f"https://{HOST}/")
    assert not result.ok and "certificate has expired" in result.detail


def test_through_the_ingress_the_handshake_names_the_store_and_the_host_header_too(
        cluster, settings):
    """The fake ingress picks its certificate by SNI like traefik: the probe
    must send the store's name in the handshake, not the ingress address."""
    cluster.use_tls("per-store")
    cluster.fake.cluster.create("namespaces", "", {"metadata": {"name": "store-x"}})
    cluster.fake.cluster.create("ingresses", "store-x", {
        "metadata": {"name": "store-x", "annotations": {
            "cert-manager.io/cluster-issuer": "letsencrypt-prod"}},
        "spec": {"tls": [{"hosts": [HOST], "secretName": "store-x-tls"}],
                 "rules": [{"host": HOST}]},
    })
    assert probe.check(f"https://{HOST}/") == probe.ProbeResult(True, "HTTP 200")
    # Another name on the same controller gets its default certificate.
    other = probe.check("https://not-ours.example.test/")
    assert not other.ok and "self-signed certificate" in other.detail


def test_plain_http_stores_are_still_probed_over_http(cluster, settings):
    cluster.fake.cluster.create("namespaces", "", {"metadata": {"name": "store-y"}})
    cluster.fake.cluster.create("ingresses", "store-y", {
        "metadata": {"name": "store-y"}, "spec": {"rules": [{"host": "plain.localtest.me"}]}})
    assert probe.check("http://plain.localtest.me/").ok
    assert probe.check("http://nobody.localtest.me/").detail == "HTTP 404"


def test_a_missing_ca_file_is_named_in_the_reason(settings, test_ca, https_server, through):
    through(https_server(*test_ca.issue([HOST])))
    settings.STORE_PROBE_CA_FILE = "/nonexistent/ca.pem"
    result = probe.check(f"https://{HOST}/")
    assert not result.ok
    assert result.detail.startswith("STORE_PROBE_CA_FILE /nonexistent/ca.pem cannot be used")
