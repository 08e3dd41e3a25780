"""Does the storefront answer, over valid HTTPS when TLS is on?

With STORE_INGRESS_PROBE_URL set, the probe connects to the ingress
controller there and sends the store's Host header (the control plane often
cannot resolve the public name from inside the cluster); otherwise it
fetches the public storefront URL.

An ``https://`` store is probed over TLS and its certificate verified for the
store's own host name (system CAs plus STORE_PROBE_CA_FILE), also through
the ingress controller: the TLS handshake then carries the store's name as
SNI, so the controller picks the certificate it would show a browser. An
``http://`` STORE_INGRESS_PROBE_URL is used on port 443 for such stores. A
self-signed or expired certificate is not "answering": Ready means valid
HTTPS (issue 11).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

USER_AGENT = "storeplatform-probe"


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str
    # The server answered, but its certificate is not valid for the host.
    certificate_error: bool = False


class _NamedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to one address while verifying the certificate of another name
    (SNI and hostname check use ``server_name``, not the address)."""

    def __init__(self, address: str, port: int, server_name: str, context: ssl.SSLContext,
                 timeout: float):
        super().__init__(address, port, context=context, timeout=timeout)
        self._server_name = server_name
        self._tls_context = context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._tls_context.wrap_socket(sock, server_hostname=self._server_name)


def tls_context() -> ssl.SSLContext:
    """The system's CAs, plus STORE_PROBE_CA_FILE for a private CA."""
    context = ssl.create_default_context()
    if settings.STORE_PROBE_CA_FILE:
        context.load_verify_locations(cafile=settings.STORE_PROBE_CA_FILE)
    return context


def _target(url: str) -> tuple[str, str, int, str]:
    """(scheme, address, port, path) to connect to for ``url``."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    via = urlsplit(settings.STORE_INGRESS_PROBE_URL) if settings.STORE_INGRESS_PROBE_URL else parts
    if parts.scheme == "https":
        port = via.port if via.scheme == "https" and via.port else (
            443 if via is not parts else (parts.port or 443))
        return "https", via.hostname or "", port, path
    return "http", via.hostname or "", via.port or 80, path


def check(url: str, timeout: float = 5.0) -> ProbeResult:
    """One GET of ``url``; 2xx and 3xx count as answering."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    scheme, address, port, path = _target(url)
    if scheme == "https":
        try:
            context = tls_context()
        except (OSError, ssl.SSLError) as exc:
            return ProbeResult(False, f"STORE_PROBE_CA_FILE {settings.STORE_PROBE_CA_FILE} "
                                      f"cannot be used: {exc}")
        connection: http.client.HTTPConnection = _NamedHTTPSConnection(
            address, port, host, context, timeout)
    else:
        connection = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": parts.netloc, "User-Agent": USER_AGENT})
        status = connection.getresponse().status
        return ProbeResult(200 <= status < 400, f"HTTP {status}")
    except ssl.SSLCertVerificationError as exc:
        return ProbeResult(False, f"its certificate is not valid for {host}: "
                                  f"{exc.verify_message or exc.reason}", certificate_error=True)
    except ssl.SSLError as exc:
        return ProbeResult(False, f"the TLS handshake for {host} failed: {exc.reason or exc}",
                           certificate_error=True)
    except (OSError, http.client.HTTPException) as exc:
        return ProbeResult(False, str(exc) or exc.__class__.__name__)
    finally:
        connection.close()


def storefront_answers(url: str, timeout: float = 5.0) -> tuple[bool, str]:
    result = check(url, timeout)
    return result.ok, result.detail


def wait_for_storefront(url: str, deadline_seconds: float, tick=None) -> tuple[bool, str]:
    """Poll until the storefront answers or the deadline passes."""
    deadline = time.monotonic() + deadline_seconds
    delay = 0.1
    while True:
        ok, detail = storefront_answers(url)
        if ok or time.monotonic() + delay > deadline:
            return ok, detail
        if tick:
            tick()
        time.sleep(delay)
        delay = min(delay * 2, 3.0)
