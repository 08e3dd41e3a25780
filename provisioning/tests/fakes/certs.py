"""Certificates for the tests' HTTPS servers, made with ``cryptography``.

``TestCA`` is a private certificate authority (what STORE_PROBE_CA_FILE
names); it issues leaf certificates for host names, optionally already
expired. ``self_signed`` is what an ingress controller shows when it has no
certificate for a name (traefik's "TRAEFIK DEFAULT CERT", ingress-nginx's
"Kubernetes Ingress Controller Fake Certificate"). EC keys: fast to make.
"""

from __future__ import annotations

import datetime as dt
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _leaf(subject: str, hosts: list[str], key, issuer_name: x509.Name, issuer_key,
          not_before: dt.datetime, not_after: dt.datetime) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject)).issuer_name(issuer_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


class TestCA:
    """A CA whose certificate is written to ``ca_file`` (PEM)."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path | None = None, name: str = "storeplatform test CA"):
        self.directory = Path(directory or tempfile.mkdtemp(prefix="test-ca-"))
        self.key = _key()
        now = dt.datetime.now(dt.UTC)
        self.name = _name(name)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(self.name).issuer_name(self.name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()),
                           critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = self.directory / "ca.pem"
        self.ca_file.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        self._count = 0

    def issue(self, hosts: list[str], *, expired: bool = False) -> tuple[Path, Path]:
        """(certificate file, key file) for ``hosts`` signed by this CA."""
        now = dt.datetime.now(dt.UTC)
        if expired:
            not_before, not_after = now - dt.timedelta(days=90), now - dt.timedelta(days=1)
        else:
            not_before, not_after = now - dt.timedelta(hours=1), now + dt.timedelta(days=7)
        key = _key()
        cert = _leaf(hosts[0], hosts, key, self.name, self.key, not_before, not_after)
        return self._write(cert, key)

    def self_signed(self, host: str) -> tuple[Path, Path]:
        """A certificate nobody vouches for, like an ingress controller's default."""
        key = _key()
        now = dt.datetime.now(dt.UTC)
        cert = _leaf(host, [host], key, _name(host), key, now - dt.timedelta(hours=1),
                     now + dt.timedelta(days=7))
        return self._write(cert, key)

    def _write(self, cert: x509.Certificate, key) -> tuple[Path, Path]:
        self._count += 1
        cert_file = self.directory / f"leaf-{self._count}.pem"
        key_file = self.directory / f"leaf-{self._count}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(_pem_key(key))
        return cert_file, key_file

    def server_context(self, cert_file: Path, key_file: Path) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        return context
