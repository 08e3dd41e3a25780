"""The engine registry: engine name -> chart, URLs and values builder.

Adding an engine means adding one ``Engine`` to ``ENGINES`` (and its chart
under ``charts/`` following docs/chart-contract.md). An engine whose chart is
not complete is refused at request time with a clear message, never
half-provisioned.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from pathlib import Path

import yaml
from django.conf import settings

SECRET_NAME = "store-credentials"
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
        """The generated per-store values (docs/chart-contract.md)."""
        tls = settings.STORE_SCHEME == "https"
        return {
            "store": {
                "id": store.id,
                "name": store.name,
                "host": store.host,
                "scheme": settings.STORE_SCHEME,
            },
            "existingSecret": SECRET_NAME,
            "ingress": {
                "className": settings.STORE_INGRESS_CLASS,
                "tls": {
                    "enabled": tls,
                    "clusterIssuer": settings.STORE_TLS_CLUSTER_ISSUER if tls else "",
                    "secretName": f"{store.release}-tls" if tls else "",
                },
            },
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
