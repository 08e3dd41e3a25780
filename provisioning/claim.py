"""Claim: a store built in advance for the warm pool becomes a user's.

``stores.services.create_store`` takes a pooled store for a new store (owner,
name, slug and host written in the same transaction that moves it from
``pooled`` to ``claiming``) and requests this operation. What is left is the
cluster's part, under the store's lease like every operation:

- the namespace is labelled with its owner (``kube.namespace_labels``);
- ``domains.change_public_url``, the URL-change step shared with custom
  domains: one ``helm upgrade`` with the store's real values (its name, host
  and ``store.pooled`` false), after which WooCommerce's setup Job moves the
  site to the new URL (``wp search-replace``) and, because the site still
  carries the pool's marker, gives it its owner's title once (see
  charts/woocommerce/files/setup.sh); then the storefront is probed.

A pooled store the pool kept suspended (STORE_POOL_SUSPENDED) is resumed
by the same upgrade: the claim's request turned its values switch
``suspended`` off, so helm scales it back up and waits for its pods
(``--wait``) before the storefront is probed. There is no separate resume
operation: one operation, one lease, one helm upgrade.

A claim that fails leaves the store failed with its reason, the owner's: a
retry runs the claim again (it is idempotent). The pool does not count it
any more, so the refill builds a replacement (docs/system-design.md).
"""

from __future__ import annotations

from django.utils import timezone

from provisioning import domains, kube
from provisioning.operations import Operation
from stores import constants as c
from stores.models import Store


def claim(op: Operation) -> None:
    """The ``claim`` operation's body."""
    store = op.store
    resumed = was_suspended(store)
    with op.step("Labelling the namespace with its owner"):
        kube.ensure_namespace(store, existing=True)
    title = ("Resuming the store at its name and address" if resumed
             else "Moving the store to its name and address")
    result = domains.change_public_url(op, title=title)
    chart_meta = result.release.get("chart", {}).get("metadata", {})
    now = timezone.now()
    message = f"The store is ready at {result.primary_url}"
    if resumed:
        message += " (resumed: the warm pool kept it suspended)"
    op.finish(c.READY, message=message, ready_at=now,
              health_checked_at=now, public_host=result.primary_host,
              chart_version=chart_meta.get("version", ""),
              helm_revision=result.release.get("version"))


def was_suspended(store: Store) -> bool:
    """Whether the store was claimed while suspended: its claim resumes it
    (a retry of a failed claim too, so the timeline keeps saying so)."""
    return store.events.filter(kind=c.EVENT_STATUS, status_from=c.SUSPENDED,
                               status_to=c.CLAIMING).exists()
