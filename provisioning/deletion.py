"""Delete a store: every resource it had, then the record of its secrets.

An operation body (see ``provisioning.operations``): uninstall the release
(not found is fine), delete the volumes, delete the namespace, wait until it
is gone. Each step is idempotent, so a retry after a namespace stuck on a
finalizer picks up where the last attempt stopped.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.utils import timezone

from provisioning import errors, helm, kube, lease
from provisioning.operations import ACTOR, Operation
from stores import constants as c
from stores.models import Backup, Domain, StoreCredentials
from stores.transitions import record_event


def delete(op: Operation) -> None:
    store = op.store
    helm_client = helm.Helm(store.id, tick=op.tick)
    if kube.namespace_state(store.namespace) is not None:
        with op.step("Uninstalling release"), lease.helm_slot(tick=op.tick):
            lease.renew(store.id, op.owner)
            removed = helm_client.uninstall(store.release, store.namespace, timeout=120)
        if not removed:
            record_event(store.id, c.EVENT_INFO, "There was no release to uninstall.", actor=ACTOR)
        with op.step("Deleting volumes"):
            kube.delete_volumes(store)
        with op.step("Deleting namespace"):
            kube.delete_namespace(store.namespace, store.id)
    with op.step("Waiting for the namespace to go"):
        _wait_namespace_gone(op)
    if op.finish(c.DELETED, message="The store was deleted.", deleted_at=timezone.now()):
        # A store whose backups are kept (STORE_BACKUP_KEEP_AFTER_DELETE)
        # keeps its credentials with them: its data holds that admin login,
        # and a copy brought back from a backup needs it. They go when the
        # backups expire (provisioning/backups.py); no one can read them meanwhile.
        if not Backup.objects.filter(store_id=store.id, status=c.BACKUP_SUCCEEDED).exists():
            StoreCredentials.objects.filter(store_id=store.id).delete()
        # A deleted store's host names are free for another store.
        Domain.objects.filter(store_id=store.id).delete()


def _wait_namespace_gone(op: Operation) -> None:
    store = op.store
    deadline = time.monotonic() + settings.STORE_NAMESPACE_WAIT
    delay = 0.05
    while True:
        state = kube.namespace_state(store.namespace)
        if state is None:
            return
        if time.monotonic() > deadline:
            holders = state["conditions"] or [{"message": f"finalizers {state['finalizers']}"}]
            raise errors.NamespaceStuck(
                f"Namespace {store.namespace} is stuck {state['phase']}: "
                + "; ".join(h["message"] for h in holders),
                details={"namespace": state},
            )
        op.tick()
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
