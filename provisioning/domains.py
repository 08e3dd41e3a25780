"""Changing a store's public URL: one operation under the store's lease.

The ``change_url`` operation (``c.OP_CHANGE_URL``, busy state
``changing_url``) runs when a custom domain is verified, made primary or
removed. Its body is ``change_url``; the work is ``change_public_url``, a step
function other operations call inside their own bodies to rename a store
(a warm-pool claim renaming a pre-built store, a backup clone renaming a
restored one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from provisioning import certificates, errors, helm, install
from provisioning.operations import ACTOR, Operation
from stores import constants as c
from stores.models import Domain, Store
from stores.transitions import record_event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublicUrl:
    """What ``change_public_url`` converged the store on."""

    primary_host: str  # the host the store lives at ("" = the platform host)
    primary_url: str
    hosts: list[str]  # every host the release now serves, platform host first
    release: dict  # helm's release JSON of the upgrade


def change_url(op: Operation) -> None:
    """The ``change_url`` operation's body."""
    result = change_public_url(op)
    chart_meta = result.release.get("chart", {}).get("metadata", {})
    op.finish(c.READY, message=f"The store answers at {result.primary_url}",
              health_checked_at=timezone.now(), public_host=result.primary_host,
              chart_version=chart_meta.get("version", ""),
              helm_revision=result.release.get("version"))


def change_public_url(op: Operation, *, title: str = "Updating the store's addresses") -> PublicUrl:
    """Converge a store's release on the host names and public URL its rows say.

    Contract, for any operation body that calls it:

    - ``op`` is the running operation and holds the store's lease; call it
      from the body, after any step that changes what the store is called
      (a rename writes ``Store.name``/``slug``/``host`` first, under the
      lease). The store's namespace, credentials Secret and a deployed
      release must exist (a provisioned, a pre-built or a restored store).
    - What it reads: ``Store.host`` (the platform host, which keeps
      answering and redirects to the primary), ``Store.name``, and the
      store's ``Domain`` rows: ``verified``/``active`` ones are served, the
      one with ``is_primary`` becomes the public URL, ``removing`` ones are
      dropped from the release (their rows are deleted once the release no
      longer serves them), ``pending_verification``/``failed`` ones are
      left out.
    - What it does, as steps of ``op`` (each an event): recover a release
      left pending, ``helm upgrade --install`` with the regenerated values
      (the same chart version the release runs now is not pinned: the
      platform's current chart, as every operation), wait for every
      certificate the release asks cert-manager for (step "Waiting for the
      certificate"), probe every served host over valid HTTPS when TLS is
      on. WooCommerce's setup Job then moves ``home``/``siteurl`` with
      ``wp search-replace`` (idempotent: only when the stored home differs);
      Medusa gets its backend URL and CORS origins from the values.
    - What it writes: served domains become ``active`` with
      ``certificate_state`` ``issued`` (``""`` with TLS off); each status
      change is an event. It does not finish the operation: the caller
      ends it with ``op.finish(c.READY, public_host=result.primary_host,
      ...)`` (or goes on with its own steps).
    - How it fails: typed errors from ``provisioning.errors`` the guarded
      operation retries or fails with (``certificate_not_issued`` marks the
      custom domains whose certificate was not issued ``failed``, so a
      retry converges without them). It is idempotent: run again after a
      crash, it converges on the same state.
    """
    store = op.store
    helm_client = helm.Helm(store.id, tick=op.tick)
    install.recover_release(op, helm_client)
    release, values = install.upgrade_release(op, helm_client, title)
    try:
        certificates.wait(op, certificates.expected(values))
    except errors.CertificateNotIssued as exc:
        _domains_failed(store, exc.hosts, exc.message)
        raise
    install.check_storefronts(op, install.storefront_urls(values))
    served = [d["host"] for d in values.get("domains", [])]
    _domains_served(store, served, tls=values["ingress"]["tls"]["enabled"])
    primary = values["store"].get("publicHost", "")
    return PublicUrl(
        primary_host=primary,
        primary_url=f"{values['store']['scheme']}://{primary or store.host}/",
        hosts=[store.host, *served],
        release=release,
    )


def _domains_served(store: Store, served: list[str], *, tls: bool) -> None:
    with transaction.atomic():
        for domain in Domain.objects.select_for_update().filter(store=store):
            if domain.status == c.DOMAIN_REMOVING:
                domain.delete()
                record_event(store.id, c.EVENT_INFO,
                             f"Domain {domain.hostname} removed: the store no longer answers "
                             "there.", actor=ACTOR)
            elif domain.hostname in served and domain.status != c.DOMAIN_ACTIVE:
                Domain.objects.filter(pk=domain.pk).update(
                    status=c.DOMAIN_ACTIVE, certificate_state="issued" if tls else "",
                    last_error="", updated_at=timezone.now())
                record_event(store.id, c.EVENT_INFO,
                             f"Domain {domain.hostname}: {domain.status} -> active. The store "
                             f"answers at {domain.url}", actor=ACTOR,
                             details={"domain": domain.hostname, "domain_status": "active"})


def _domains_failed(store: Store, hosts: list[str], message: str) -> None:
    for domain in Domain.objects.filter(store=store, hostname__in=hosts,
                                        status__in=c.SERVED_DOMAIN_STATES):
        Domain.objects.filter(pk=domain.pk).update(
            status=c.DOMAIN_FAILED, certificate_state="failed", last_error=message,
            is_primary=False, updated_at=timezone.now())
        record_event(store.id, c.EVENT_WARNING,
                     f"Domain {domain.hostname}: {domain.status} -> failed. {message} Check its "
                     "DNS, then verify it again.", reason=c.REASON_CERTIFICATE_NOT_ISSUED,
                     actor=ACTOR, details={"domain": domain.hostname, "domain_status": "failed"})
