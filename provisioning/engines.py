"""The engine registry: engine name -> chart, URLs and values builder.

Adding an engine means adding one ``Engine`` to ``ENGINES`` (and its chart
under ``charts/`` following docs/chart-contract.md). An engine whose chart is
not complete is refused at request time with a clear message, never
half-provisioned.
"""

from __future__ import annotations

import hashlib
import secrets
import socket
import string
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from django.conf import settings

from stores import constants as c

SECRET_NAME = "store-credentials"
# Holds the SMTP relay's password (key "password"); written by
# kube.ensure_smtp_secret().
SMTP_SECRET_NAME = "store-smtp"
PASSWORD_ALPHABET = string.ascii_letters + string.digits


def _password(length: int = 24) -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


class EngineUnavailable(Exception):
    pass


@dataclass(frozen=True)
class Engine:
    name: str
    title: str
    chart: str
    # Pod Security Admission level the chart's pods satisfy; the namespace is
    # labelled with it.
    pod_security: str = "restricted"
    # Admin login is an e-mail address (Medusa) or a user name (WordPress).
    login_is_email: bool = False

    @property
    def chart_path(self) -> Path:
        return settings.CHARTS_DIR / self.chart

    @property
    def profile_values(self) -> Path:
        return settings.VALUES_DIR / f"{self.chart}-{settings.STORE_VALUES_PROFILE}.yaml"

    def check_available(self) -> None:
        """Raise EngineUnavailable saying what is missing."""
        required = [
            self.chart_path / "Chart.yaml",
            self.chart_path / "values.schema.json",
            self.chart_path / "templates",
            self.profile_values,
        ]
        missing = [str(p.relative_to(settings.BASE_DIR)) if p.is_relative_to(settings.BASE_DIR)
                   else str(p) for p in required if not p.exists()]
        if missing:
            raise EngineUnavailable(
                f"The {self.title} engine is not available yet: its chart is incomplete "
                f"(missing {', '.join(missing)})."
            )

    @property
    def chart_version(self) -> str:
        meta = yaml.safe_load((self.chart_path / "Chart.yaml").read_text())
        return str(meta.get("version", ""))

    def new_credentials(self, store) -> dict[str, str]:
        email = f"admin@{store.host}"
        return {
            "admin-username": email if self.login_is_email else "admin",
            "admin-email": email,
            "admin-password": _password(),
            "db-password": _password(),
            "db-root-password": _password(),
            "jwt-secret": _password(48),
            "cookie-secret": _password(48),
        }

    def values(self, store) -> dict:
        """The generated per-store values (docs/chart-contract.md): the
        store, its TLS mode, and the custom domains its release serves (read
        from the database, so every operation keeps them)."""
        # Imported here: the engine registry is read while Django loads its apps.
        from stores.models import Domain

        mode = settings.STORE_TLS_MODE
        tls = mode != c.TLS_OFF
        domains = list(Domain.objects.filter(store_id=store.id,
                                             status__in=c.SERVED_DOMAIN_STATES).order_by("id"))
        primary = next((d.hostname for d in domains if d.is_primary), "")
        return {
            "store": {
                "id": store.id,
                "name": store.name,
                "host": store.host,
                "scheme": settings.STORE_SCHEME,
                "publicHost": primary,
                # A store built for the warm pool, not claimed yet (stores/pool.py).
                "pooled": store.owner_id is None,
            },
            "existingSecret": SECRET_NAME,
            "ingress": {
                "className": settings.STORE_INGRESS_CLASS,
                "tls": {
                    "enabled": tls,
                    "mode": c.TLS_WILDCARD if mode == c.TLS_WILDCARD else c.TLS_PER_STORE,
                    "clusterIssuer": settings.STORE_TLS_CLUSTER_ISSUER if tls else "",
                    "secretName": f"{store.release}-tls" if mode == c.TLS_PER_STORE else "",
                },
            },
            "domains": [{"host": d.hostname, "secretName": domain_secret(store, d.hostname)}
                        for d in domains],
            "smtp": smtp_values(),
            # Suspend and resume (issue 13): the chart's switch, and where a
            # suspended store's Ingress sends visitors (the paused page).
            "suspended": store.suspended,
            "paused": {"backend": settings.STORE_PAUSED_BACKEND,
                       "port": settings.STORE_PAUSED_PORT},
            # Backups (issue 12): where the chart's backup and restore Jobs
            # write and read, and the one address their egress policy opens.
            "backup": backup_values(),
        }


def backup_values() -> dict:
    """The charts' ``backup`` block from the STORE_BACKUP_S3_* settings."""
    endpoint = settings.STORE_BACKUP_S3_ENDPOINT
    image = {}
    if settings.STORE_BACKUP_IMAGE:
        repository, _, tag = settings.STORE_BACKUP_IMAGE.rpartition(":")
        image = {"image": {"repository": repository, "tag": tag}}
    return {
        **image,
        "activeDeadlineSeconds": settings.STORE_BACKUP_TIMEOUT,
        "objectStorage": {
            "endpoint": endpoint,
            "bucket": settings.STORE_BACKUP_S3_BUCKET,
            "region": settings.STORE_BACKUP_S3_REGION,
            "sse": settings.STORE_BACKUP_S3_SSE,
            "egress": object_storage_egress(endpoint) if settings.STORE_BACKUP_S3_BUCKET else [],
        },
    }


def object_storage_egress(endpoint: str) -> list[dict]:
    """The addresses a backup Job may reach: the endpoint's host resolved
    now, on its port. AWS S3 (no endpoint) answers from addresses that
    change, so its Jobs may reach any address on 443."""
    if not endpoint:
        return [{"cidr": "0.0.0.0/0", "port": 443}]
    url = urlsplit(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(url.hostname, port, type=socket.SOCK_STREAM)
    except OSError:
        return []  # the Job then cannot reach it either; its error says so
    addresses = sorted({info[4][0] for info in infos})
    return [{"cidr": f"{ip}/{128 if ':' in ip else 32}", "port": port} for ip in addresses]


def domain_secret(store, hostname: str) -> str:
    """The TLS Secret (and Certificate, and Ingress less "-tls") of one
    custom domain: stable for a host name, a valid object name for any."""
    digest = hashlib.sha256(hostname.encode()).hexdigest()[:10]
    return f"{store.release}-domain-{digest}-tls"


def smtp_values() -> dict:
    """The SMTP relay every store's mail goes through (STORE_SMTP_* settings).

    The password is never a value: kube.ensure_smtp_secret() writes it into
    the Secret store-smtp before helm runs, and only then is that Secret named
    here."""
    return {
        "host": settings.STORE_SMTP_HOST,
        "port": settings.STORE_SMTP_PORT,
        "username": settings.STORE_SMTP_USER,
        "from": settings.STORE_SMTP_FROM,
        "tls": settings.STORE_SMTP_TLS,
        "existingSecret": SMTP_SECRET_NAME if settings.STORE_SMTP_PASSWORD else "",
    }


ENGINES: dict[str, Engine] = {
    engine.name: engine
    for engine in [
        Engine("woocommerce", "WooCommerce", chart="woocommerce"),
        Engine("medusa", "MedusaJS", chart="medusa", login_is_email=True),
    ]
}

def get_engine(name: str) -> Engine:
    return ENGINES[name]
