"""Typed provisioning errors, each mapped to a reason a person understands.

``transient`` errors are retried with backoff (the cluster is briefly away or
throttling); the others fail the store at once with their reason.
"""

from __future__ import annotations

from stores import constants as c


def shorten(text: str, limit: int = 240) -> str:
    """One line of at most ``limit`` characters, cut at a word, with an
    ellipsis: the sentence of an error whose whole text is kept as details."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " …"


class ProvisioningError(Exception):
    reason = c.REASON_INTERNAL
    transient = False

    def __init__(self, message: str, *, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}


class ClusterUnreachable(ProvisioningError):
    reason = c.REASON_CLUSTER_UNREACHABLE
    transient = True


class ClusterThrottled(ProvisioningError):
    reason = c.REASON_CLUSTER_THROTTLED
    transient = True


class ClusterNotConfigured(ProvisioningError):
    reason = c.REASON_NOT_CONFIGURED


class TimedOut(ProvisioningError):
    reason = c.REASON_TIMED_OUT


class QuotaExceeded(ProvisioningError):
    reason = c.REASON_QUOTA_EXCEEDED


class ChartError(ProvisioningError):
    reason = c.REASON_CHART_ERROR


class ReleaseLocked(ProvisioningError):
    reason = c.REASON_RELEASE_LOCKED
    transient = True


class StorefrontDown(ProvisioningError):
    reason = c.REASON_STOREFRONT_DOWN


class NamespaceStuck(ProvisioningError):
    reason = c.REASON_NAMESPACE_STUCK
    transient = True


class HelmFailed(ProvisioningError):
    reason = c.REASON_HELM_FAILED


class ClusterUnauthorized(ProvisioningError):
    """The API did not accept our credentials (401)."""

    reason = c.REASON_CLUSTER_UNAUTHORIZED


class ClusterForbidden(ProvisioningError):
    """Our account may not do this (403, not a quota)."""

    reason = c.REASON_CLUSTER_FORBIDDEN


class ClusterRejected(ProvisioningError):
    """Any other 4xx: the request itself was refused."""

    reason = c.REASON_CLUSTER_REJECTED
class CredentialsUnreadable(ProvisioningError):
    """The stored credentials fit none of the keys in STORE_CREDENTIALS_KEY:
    an operator must put the old key back (README, "Rotating the credentials
    key"); new passwords would lock the shop out of its own database."""

    reason = c.REASON_CREDENTIALS_UNREADABLE


class CertificateNotIssued(ProvisioningError):
    """cert-manager did not make a certificate Ready in time."""

    reason = c.REASON_CERTIFICATE_NOT_ISSUED

    def __init__(self, message: str, *, details: dict | None = None, hosts=()):
        super().__init__(message, details=details)
        self.hosts = list(hosts)  # the host names whose certificate is missing


class Cancelled(Exception):
    """The store was deleted while we worked on it; deletion wins."""


class LeaseLost(Exception):
    """Another worker took the store over; stop without touching it."""


class BackupFailed(ProvisioningError):
    """A backup Job failed, or what it wrote did not verify (issue 12)."""

    reason = c.REASON_BACKUP_FAILED


class RestoreFailed(ProvisioningError):
    """A restore Job failed: the store's data may be half replaced."""

    reason = c.REASON_RESTORE_FAILED
