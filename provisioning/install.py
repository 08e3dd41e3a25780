"""Provision, upgrade, suspend, resume and roll back: bring a store's release
to where it should be, then make sure the storefront answers.

Suspend and resume (issue 13) are upgrades of the release with the values
switch ``suspended`` (``Store.suspended``, set by the service that requests
them) on or off: the chart scales everything to 0 and sends the store's
hosts to the platform's paused page, or back. Every operation generates its
values from the store's rows, so an upgrade of a suspended store keeps it
suspended, and a suspended store is not probed (it has no pods to answer).

These are operation bodies: ``provisioning.operations.run`` calls them under
the store's lease and maps whatever they raise to an outcome. Every step is
idempotent, so a retry or a resumption after a lost worker starts over
safely: the namespace and the credentials Secret are kept if present, a
release left ``pending-*`` by a dead helm is recovered, and
``helm upgrade --install`` converges whatever is there.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import datetime

import yaml
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from provisioning import certificates, errors, helm, kube, lease, probe
from provisioning.engines import SECRET_NAME, get_engine
from provisioning.operations import ACTOR, DEADLINE_MARGIN, Operation
from stores import constants as c
from stores.models import CredentialsUnreadable, Revision, Store, StoreCredentials
from stores.transitions import record_event

log = logging.getLogger(__name__)

DONE_MESSAGES = {
    c.OP_PROVISION: "The store is ready.",
    c.OP_UPGRADE: "The upgrade is done.",
    c.OP_ROLLBACK: "The rollback is done.",
    c.OP_SUSPEND: "The store is suspended: it runs no pods, and its address shows a "
                  "paused page.",
    c.OP_RESUME: "The store is running again.",
}
# A suspended store that was upgraded is still suspended.
DONE_SUSPENDED = "The upgrade is done; the store is still suspended."
POOLED_MESSAGE = "The store is ready and waits in the warm pool."
POOLED_SUSPENDED_MESSAGE = ("The store waits in the warm pool, suspended: it runs no pods "
                            "until a claim resumes it.")


def install(op: Operation, *, before_ready=None) -> None:
    """Provision, upgrade, suspend or resume: converge the release on the
    current chart with the store's values; Ready, or Suspended when the
    values switch ``suspended`` is on. ``before_ready(op)`` runs once the
    storefront answers, before the final state (a clone's restore)."""
    store = op.store
    engine = get_engine(store.engine)
    creds = credentials(store)
    helm_client = helm.Helm(store.id, secrets=creds.values(), tick=op.tick)

    with op.step("Preparing namespace"):
        kube.ensure_namespace(store)
    with op.step("Storing credentials"):
        kube.ensure_secret(store, SECRET_NAME, creds)
        # The relay's password changes with the operator's setting; the
        # store's own credentials never do.
        kube.ensure_smtp_secret(store, settings.STORE_SMTP_PASSWORD)
    recover_release(op, helm_client)

    release, values = upgrade_release(op, helm_client, _install_title(op, engine.chart_version))
    chart_meta = release.get("chart", {}).get("metadata", {})
    revision = {"chart_version": chart_meta.get("version", ""),
                "helm_revision": release.get("version")}
    if values["suspended"]:
        message = DONE_SUSPENDED if op.kind == c.OP_UPGRADE else DONE_MESSAGES[op.kind]
        if store.owner_id is None and op.kind == c.OP_SUSPEND:
            message = POOLED_SUSPENDED_MESSAGE
        op.finish(c.SUSPENDED, message=message, **revision)
        return
    certificates.wait(op, certificates.expected(values))
    check_storefronts(op, storefront_urls(values))
    if before_ready is not None:
        before_ready(op)
    fields = {"ready_at": timezone.now()} if op.kind == c.OP_PROVISION else {}
    # A store without an owner was built for the warm pool: it waits there.
    pooled = store.owner_id is None
    op.finish(c.POOLED if pooled else c.READY,
              message=POOLED_MESSAGE if pooled else DONE_MESSAGES[op.kind],
              health_checked_at=timezone.now(), **revision, **fields)


def _install_title(op: Operation, chart_version: str) -> str:
    """The step that runs helm, in the words of the operation."""
    return {
        c.OP_PROVISION: "Installing chart",
        c.OP_SUSPEND: "Scaling the store down to zero",
        c.OP_RESUME: "Scaling the store back up",
    }.get(op.kind, f"Upgrading to chart {chart_version}")


def upgrade_release(op: Operation, helm_client: helm.Helm, title: str, *,
                    overrides: dict | None = None) -> tuple[dict, dict]:
    """``helm upgrade --install`` the store's release on the current chart
    with the profile and freshly generated values (its custom domains
    included, then ``overrides``, such as a restore's ``maintenance``);
    returns helm's release JSON and the generated values."""
    store = op.store
    engine = get_engine(store.engine)
    values = {**engine.values(store), **(overrides or {})}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix=f"{store.id}-") as values_file:
        yaml.safe_dump(values, values_file)
        values_file.flush()
        files = [str(engine.profile_values), values_file.name]

        def upgrade_install() -> dict:
            op.watch_quota = True
            try:
                return helm_client.upgrade_install(
                    store.release, str(engine.chart_path), store.namespace, files,
                    timeout=_helm_timeout(store),
                )
            finally:
                op.watch_quota = False

        release = _run_helm(op, helm_client, title, upgrade_install)
    return release, values


def storefront_urls(values: dict) -> list[str]:
    """Every address the release serves: the platform host, then each
    custom domain (the non-primary ones answer with a redirect)."""
    scheme = values["store"]["scheme"]
    hosts = [values["store"]["host"]] + [d["host"] for d in values.get("domains", [])]
    return [f"{scheme}://{host}/" for host in hosts]


def rollback(op: Operation) -> None:
    """Go back to the revision the owner chose (``target_revision``)."""
    store = op.store
    helm_client = helm.Helm(store.id, tick=op.tick)
    recover_release(op, helm_client)
    revision = store.target_revision
    _run_helm(op, helm_client, f"Rolling back to revision {revision}", lambda: helm_client.rollback(
        store.release, store.namespace, revision, timeout=_helm_timeout(store)))
    check_storefronts(op, [store.storefront_url])
    current = Revision.objects.filter(store=store, status="deployed").first()
    pooled = store.owner_id is None
    op.finish(c.POOLED if pooled else c.READY,
              message=POOLED_MESSAGE if pooled else DONE_MESSAGES[op.kind],
              health_checked_at=timezone.now(),
              chart_version=current.chart_version if current else store.chart_version,
              helm_revision=current.number if current else None, target_revision=None)


def credentials(store: Store) -> dict[str, str]:
    """Generated once per store, then always the same."""
    existing = StoreCredentials.objects.filter(store=store).first()
    if existing:
        try:
            return existing.values
        except CredentialsUnreadable as exc:
            raise errors.CredentialsUnreadable(exc.message) from exc
    values = get_engine(store.engine).new_credentials(store)
    obj, _ = StoreCredentials.objects.get_or_create(
        store=store, defaults={"encrypted": StoreCredentials.encrypt(values)}
    )
    return obj.values


def _run_helm(op: Operation, helm_client: helm.Helm, title: str, command):
    """Run a helm command that changes the release, inside a global helm
    slot, then record the release's history as helm now reports it (also
    after a failure: the failed revision is part of the history)."""
    try:
        with op.step(title), lease.helm_slot(tick=op.tick):
            lease.renew(op.store.id, op.owner)  # checked again right before helm runs
            result = command()
    except errors.ProvisioningError:
        record_revisions(op.store, helm_client, quiet=True)
        raise
    record_revisions(op.store, helm_client)
    return result


def record_revisions(store: Store, helm_client: helm.Helm, quiet: bool = False) -> None:
    """Keep the store's revisions as ``helm history`` reports them now."""
    try:
        rows = helm_client.history(store.release, store.namespace)
    except errors.ProvisioningError as exc:
        if not quiet:
            raise
        log.warning("store=%s could not read the release history: %s", store.id, exc.message)
        return
    revisions = [
        Revision(store=store, number=row["revision"], status=row.get("status", ""),
                 chart=row.get("chart", ""), app_version=row.get("app_version", ""),
                 description=row.get("description", ""),
                 updated_at=_helm_time(row.get("updated", "")))
        for row in rows
    ]
    # Two statements however long the history is: it is written after every
    # change to the release, on the path of every operation.
    with transaction.atomic():
        Revision.objects.filter(store=store).exclude(
            number__in=[r.number for r in revisions]).delete()
        Revision.objects.bulk_create(
            revisions, update_conflicts=True, unique_fields=["store", "number"],
            update_fields=["status", "chart", "app_version", "description", "updated_at"])


def _helm_time(value: str) -> datetime | None:
    """helm prints Go timestamps with up to nine fractional digits."""
    if not value:
        return None
    head, dot, rest = value.partition(".")
    if dot:
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits):]
        value = f"{head}.{digits[:6]}{zone}"
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def check_storefronts(op: Operation, urls: list[str]) -> None:
    """Each URL must answer (over valid HTTPS when TLS is on)."""
    with op.step("Waiting for the storefront"):
        for url in urls:
            ok, detail = probe.wait_for_storefront(
                url, settings.STORE_READY_PROBE_TIMEOUT, tick=op.tick
            )
            if not ok:
                raise errors.StorefrontDown(f"The storefront at {url} did not answer ({detail}).")


def _helm_timeout(store: Store) -> int:
    """helm's --timeout: what is left of the deadline, less our own margin."""
    if store.deadline_at is None:
        return settings.STORE_PROVISION_TIMEOUT
    left = (store.deadline_at - timezone.now()).total_seconds() - DEADLINE_MARGIN + 60
    floor = min(30, settings.STORE_PROVISION_TIMEOUT)
    return max(floor, min(settings.STORE_PROVISION_TIMEOUT, int(left)))


def recover_release(op: Operation, helm_client: helm.Helm) -> None:
    """Release a helm lock left by a process that died mid-operation.

    A release in pending-install/upgrade/rollback refuses every new
    operation ("another operation is in progress"). We hold the store's
    lease, so no live worker of ours is running helm on it: roll back to the
    last good revision, or uninstall a first install that never completed.
    """
    store = op.store
    # Read the release state where helm keeps it (its storage Secrets' labels):
    # a Kubernetes read, not a helm process, on the path of every operation.
    with op.step("Checking release state"):
        state = kube.release_status(store.namespace, store.release)
    if state not in helm.PENDING_STATES:
        return
    history = helm_client.history(store.release, store.namespace)
    good = [h["revision"] for h in history if h.get("status") in ("deployed", "superseded")]
    if good:
        message = (f"Release was left {state} by a stopped process; "
                   f"rolled back to revision {good[-1]}.")
        recover = lambda: helm_client.rollback(  # noqa: E731
            store.release, store.namespace, good[-1], timeout=300)
    else:
        message = (f"Release was left {state} by a stopped process; "
                   "removed the unfinished install.")
        recover = lambda: helm_client.uninstall(  # noqa: E731
            store.release, store.namespace, timeout=300)
    _run_helm(op, helm_client, "Recovering a release left pending", recover)
    record_event(store.id, c.EVENT_WARNING, message, reason=c.REASON_RELEASE_LOCKED, actor=ACTOR)
