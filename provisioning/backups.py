"""Backups and restores of a store (issue 12).

A backup is a Kubernetes Job in the store's namespace, made from the chart's
suspended CronJob ``<release>-backup`` (the chart owns the pod: image,
volumes, the database's address, the fences). Its script
(``charts/<engine>/files/backup.sh``) streams the database dump and the
files to object storage, reads every part back to verify it, and only then
writes ``parts.json``. The platform then checks each part is where
``parts.json`` says, at the size it says, and writes the backup's
``manifest.json`` (engine, chart, revision, values without secrets, parts).
A backup that fails any of this is a failed backup; earlier backups are
never touched.

The ``backup`` operation (status ``backing_up``) runs ``take`` and returns
the store to ready whatever the backup's outcome: a failed backup is the
Backup's failure, not the store's. Upgrades, rollbacks and restores call
``take`` as their first step (``before``); there a failure stops the
operation with reason ``backup_failed``, before anything changed.

A restore (status ``restoring``) takes a safety backup, switches the
release to ``maintenance`` (the shop's pods stop, the database keeps
running, the address shows the paused page), runs the chart's
``<release>-restore`` Job with the chosen backup, switches maintenance off,
waits for the pods and probes the storefront.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.utils import timezone

from provisioning import errors, helm, install, kube, metrics, objectstore
from provisioning.engines import get_engine
from provisioning.operations import ACTOR, Operation
from stores import constants as c
from stores.models import Backup, Store, StoreCredentials
from stores.transitions import record_event

log = logging.getLogger(__name__)

# The Secret holding the object storage keys in each store's namespace
# (the charts' backup.existingSecret default).
SECRET_NAME = "store-backup-s3"
POLL_SECONDS = 2.0


class NotConfigured(Exception):
    """Object storage is not configured; the message names the setting."""


def missing_setting() -> str:
    """The first object storage setting that is missing, or ""."""
    for name in ("STORE_BACKUP_S3_BUCKET", "STORE_BACKUP_S3_ACCESS_KEY_FILE",
                 "STORE_BACKUP_S3_SECRET_KEY_FILE"):
        if not getattr(settings, name):
            return name
    return ""


def check_configured() -> None:
    missing = missing_setting()
    if missing:
        raise NotConfigured(
            f"Backups need object storage, and {missing} is not set. The platform's operator "
            "sets STORE_BACKUP_S3_BUCKET, STORE_BACKUP_S3_ACCESS_KEY_FILE and "
            "STORE_BACKUP_S3_SECRET_KEY_FILE (and STORE_BACKUP_S3_ENDPOINT for a service "
            "other than AWS S3).")


def storage() -> objectstore.Config:
    check_configured()
    return objectstore.Config.from_files(
        endpoint=settings.STORE_BACKUP_S3_ENDPOINT, bucket=settings.STORE_BACKUP_S3_BUCKET,
        region=settings.STORE_BACKUP_S3_REGION,
        access_key_file=settings.STORE_BACKUP_S3_ACCESS_KEY_FILE,
        secret_key_file=settings.STORE_BACKUP_S3_SECRET_KEY_FILE,
        sse=settings.STORE_BACKUP_S3_SSE,
    )


def job_env(backup: Backup) -> dict[str, str]:
    """What the platform adds to a backup or restore Job: which backup, and
    where object storage is now. The CronJob has the storage of the store's
    last install or upgrade; these win, so a changed setting applies to the
    next backup, not the next upgrade."""
    return {
        "BACKUP_PREFIX": prefix_of(backup),
        "S3_ENDPOINT": settings.STORE_BACKUP_S3_ENDPOINT,
        "S3_BUCKET": settings.STORE_BACKUP_S3_BUCKET,
        "S3_REGION": settings.STORE_BACKUP_S3_REGION,
        "S3_SSE": settings.STORE_BACKUP_S3_SSE,
    }


def prefix_of(backup: Backup) -> str:
    return f"{settings.STORE_BACKUP_S3_PREFIX}stores/{backup.store_id}/{backup.id}/"


def job_name(backup: Backup, what: str = "backup") -> str:
    return f"{what}-{backup.id}"


# -- the backup operation ----------------------------------------------------------
def backup(op: Operation) -> None:
    """The ``backup`` operation's body: take the store's pending backup (the
    one the request created; a resumed attempt finds it running)."""
    pending = (Backup.objects.filter(store=op.store, status__in=c.BACKUP_OPEN_STATES)
               .order_by("created_at").first())
    if pending is None:  # a retry of a backup operation that failed: a new backup
        pending = Backup.objects.create(store=op.store, kind=c.BACKUP_MANUAL, actor=ACTOR)
    try:
        take(op, pending)
    except errors.BackupFailed as exc:
        op.finish(c.READY, message=f"The backup failed: {exc.message} The store runs as "
                  "before; earlier backups are untouched.")
        return
    op.finish(c.READY, message="The backup is done and verified.")


def before(op: Operation, kind: str) -> Backup | None:
    """The backup an operation takes before it changes anything (an
    upgrade, a rollback, a restore). None when it is skipped: no object
    storage configured, an operator's audited choice (``skip_backup``), or
    a store whose database is not running (suspended, failed); each says
    so in the timeline. Raises BackupFailed when the backup fails."""
    store = op.store
    why_not = ""
    if missing_setting():
        why_not = f"no object storage is configured ({missing_setting()} is not set)"
    elif store.owner_id is None:
        why_not = "the store is in the warm pool and holds no one's data yet"
    elif store.skip_backup:
        why_not = "it was asked to go on without one"
    elif store.suspended:
        why_not = "the store is suspended, so its data has not changed since it was paused"
    elif store.helm_revision is None:
        why_not = "the store was never installed"
    elif not kube.cronjob_exists(store.namespace, f"{store.release}-backup"):
        why_not = ("the store's chart predates backups; this upgrade brings them" if
                   kind == c.BACKUP_PRE_UPGRADE else "the store's chart predates backups")
    if why_not:
        record_event(store.id, c.EVENT_INFO, f"No backup first: {why_not}.", actor=ACTOR)
        return None
    # A resumed attempt finds the backup its first attempt started.
    taken = (Backup.objects.filter(store=store, kind=kind, created_at__gte=store.started_at
                                   or timezone.now())
             .exclude(status=c.BACKUP_EXPIRED).order_by("-created_at").first())
    if taken is None or taken.status == c.BACKUP_FAILED:
        taken = Backup.objects.create(store=store, kind=kind, actor=ACTOR)
    if taken.status != c.BACKUP_SUCCEEDED:
        take(op, taken)
    return taken


def take(op: Operation, backup_row: Backup) -> None:
    """Run one backup to its end: the Job, then the platform's own check
    of what it wrote. Raises BackupFailed (the Backup row says why)."""
    store = op.store
    started = time.monotonic()
    try:
        with op.step("Backing up the database and files"):
            config = storage()
            Backup.objects.filter(pk=backup_row.pk, started_at__isnull=True).update(
                started_at=timezone.now())
            Backup.objects.filter(pk=backup_row.pk).update(status=c.BACKUP_RUNNING)
            if not kube.cronjob_exists(store.namespace, f"{store.release}-backup"):
                raise errors.BackupFailed("The store's chart predates backups: upgrade the "
                                          "store, then back it up.", details={"why": "job"})
            _hand_keys(store, config)
            _run_job(op, backup_row, "backup", env=job_env(backup_row),
                     failure=errors.BackupFailed)
        with op.step("Verifying the backup"):
            manifest, digest, size = _verify(config, store, backup_row)
    except (errors.BackupFailed, objectstore.ObjectStoreError, NotConfigured, OSError) as exc:
        failure = exc if isinstance(exc, errors.BackupFailed) else errors.BackupFailed(
            f"The backup could not be checked: {exc}", details={"why": "verification"})
        _failed(store, backup_row, failure.message, time.monotonic() - started,
                failure.details.get("why", "verification"))
        raise failure from exc
    now = timezone.now()
    Backup.objects.filter(pk=backup_row.pk).update(
        status=c.BACKUP_SUCCEEDED, finished_at=now, verified_at=now, size=size, sha256=digest,
        manifest=manifest, error="",
        location=f"s3://{config.bucket}/{prefix_of(backup_row)}")
    metrics.observe_backup(store.engine, "succeeded", time.monotonic() - started, size)
    record_event(store.id, c.EVENT_INFO,
                 f"Backup {backup_row.id} written and verified ({_size(size)}).",
                 actor=ACTOR, details={"backup": backup_row.id,
                                       "backup_status": c.BACKUP_SUCCEEDED})
    try:
        expire_old(store)
    except objectstore.ObjectStoreError as exc:  # the next backup tries again
        log.warning("store=%s could not expire old backups: %s", store.id, exc)


def _hand_keys(store: Store, config: objectstore.Config) -> None:
    """The object storage keys into the store's namespace, where the chart's
    Jobs mount them (a rotated key reaches the next Job)."""
    kube.apply_secret(store, SECRET_NAME, {"access-key": config.access_key,
                                           "secret-key": config.secret_key})


def _run_job(op: Operation, backup_row: Backup, what: str, *, env: dict[str, str],
             failure: type[errors.ProvisioningError]) -> None:
    """Start the chart's ``<release>-<what>`` Job for a backup and wait for
    it, renewing the lease; a Job that failed raises ``failure`` with its
    termination message. The finished Job is removed (its pod's log is
    gone with it; what it said is in the error)."""
    store = op.store
    name = job_name(backup_row, what)
    kube.start_job(store, f"{store.release}-{what}", name, env)
    deadline = time.monotonic() + settings.STORE_BACKUP_TIMEOUT
    delay = 0.2  # a small store's Job ends in seconds; a large one's is not asked often
    while True:
        op.tick()
        state = kube.job_state(store.namespace, name)
        if state.phase == "succeeded":
            break
        if state.phase in ("failed", "missing"):
            message = state.message or "the Job disappeared before it finished."
            kube.delete_job(store, name)
            why = "timed_out" if state.reason == "DeadlineExceeded" else "job"
            raise failure(f"The {what} Job failed: {message}",
                          details={"job": name, "why": why})
        if time.monotonic() > deadline:
            kube.delete_job(store, name)
            raise failure(f"The {what} Job did not finish within "
                          f"{settings.STORE_BACKUP_TIMEOUT} s.",
                          details={"job": name, "why": "timed_out"})
        time.sleep(delay)
        delay = min(delay * 2, POLL_SECONDS)
    kube.delete_job(store, name)


def _verify(config: objectstore.Config, store: Store,
            backup_row: Backup) -> tuple[dict, str, int]:
    """Check what the Job wrote (each part present, at its size) and write
    the manifest; returns it, its sha256 and the backup's size."""
    prefix = prefix_of(backup_row)
    try:
        parts = objectstore.read_json(config, f"{prefix}parts.json")
    except objectstore.MissingError as exc:
        raise errors.BackupFailed("The backup Job ended without writing parts.json, so "
                                  "its parts were never verified.") from exc
    size = 0
    for part in parts.get("parts", []):
        if not part.get("key", "").startswith(prefix):
            raise errors.BackupFailed(f"Part {part.get('name')} lies outside the backup's "
                                      "prefix.")
        found = objectstore.head(config, part["key"])
        if found is None:
            raise errors.BackupFailed(f"Part {part['name']} is missing from object storage.")
        if found["size"] != part["size"]:
            raise errors.BackupFailed(
                f"Part {part['name']} is {found['size']} bytes in object storage, but the Job "
                f"wrote {part['size']}.")
        size += part["size"]
    if {p.get("name") for p in parts.get("parts", [])} != {"database", "files"}:
        raise errors.BackupFailed("parts.json does not list a database and a files part.")
    values = get_engine(store.engine).values(store)  # names Secrets, holds no secret
    manifest = {
        "format": 1, "store": store.id, "backup": backup_row.id, "kind": backup_row.kind,
        "engine": store.engine, "chart_version": store.chart_version,
        "helm_revision": store.helm_revision, "values": values,
        "started_at": parts.get("started_at"), "finished_at": parts.get("finished_at"),
        "verified_at": parts.get("verified_at"), "size": size, "parts": parts["parts"],
    }
    objectstore.write_json(config, f"{prefix}manifest.json", manifest)
    # Read back, like every part: the checksum is of what storage holds.
    written = objectstore.get_stream(config, f"{prefix}manifest.json")
    return manifest, written["sha256"], size


def _failed(store: Store, backup_row: Backup, message: str, seconds: float,
            why: str) -> None:
    Backup.objects.filter(pk=backup_row.pk).update(
        status=c.BACKUP_FAILED, finished_at=timezone.now(), error=message)
    metrics.observe_backup(store.engine, "failed", seconds, None, reason=why)
    record_event(store.id, c.EVENT_WARNING, f"Backup {backup_row.id} failed: {message}",
                 reason=c.REASON_BACKUP_FAILED, actor=ACTOR,
                 details={"backup": backup_row.id, "backup_status": c.BACKUP_FAILED})


def _size(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return ""  # pragma: no cover


# -- retention ---------------------------------------------------------------------
def expire_old(store: Store) -> int:
    """Keep the store's newest STORE_BACKUP_KEEP good backups and the pinned
    ones; delete the others' objects, then mark them expired."""
    keep = set(Backup.objects.filter(store=store, status=c.BACKUP_SUCCEEDED, pinned=False)
               .order_by("-created_at").values_list("id", flat=True)
               [:settings.STORE_BACKUP_KEEP])
    old = (Backup.objects.filter(store=store, status__in=[c.BACKUP_SUCCEEDED, c.BACKUP_FAILED],
                                 pinned=False).exclude(id__in=keep))
    return _expire(list(old), "older than the newest "
                   f"{settings.STORE_BACKUP_KEEP} good backups")


def expire_deleted_stores() -> int:
    """Backups of stores deleted more than STORE_BACKUP_KEEP_AFTER_DELETE
    days ago go, pinned or not."""
    cutoff = timezone.now() - timezone.timedelta(days=settings.STORE_BACKUP_KEEP_AFTER_DELETE)
    old = Backup.objects.filter(store__status=c.DELETED, store__deleted_at__lt=cutoff).exclude(
        status=c.BACKUP_EXPIRED)
    expired = _expire(list(old), f"its store was deleted more than "
                      f"{settings.STORE_BACKUP_KEEP_AFTER_DELETE} days ago")
    # Their credentials were kept for them (provisioning/deletion.py).
    StoreCredentials.objects.filter(store__status=c.DELETED,
                                    store__deleted_at__lt=cutoff).delete()
    return expired


def _expire(rows: list[Backup], why: str) -> int:
    if not rows:
        return 0
    config = storage()
    for row in rows:
        objectstore.delete_prefix(config, prefix_of(row))
        Backup.objects.filter(pk=row.pk).update(status=c.BACKUP_EXPIRED)
        record_event(row.store_id, c.EVENT_INFO, f"Backup {row.id} expired: {why}.",
                     actor=ACTOR, details={"backup": row.id})
    return len(rows)


# -- upgrades and rollbacks take a backup first ----------------------------------------
def upgrade(op: Operation) -> None:
    """The ``upgrade`` operation's body: a backup, then the upgrade. A
    failed backup stops it (reason ``backup_failed``) before anything changed."""
    before(op, c.BACKUP_PRE_UPGRADE)
    install.install(op)


def rollback(op: Operation) -> None:
    """The ``rollback`` operation's body: a backup, then the rollback."""
    before(op, c.BACKUP_PRE_UPGRADE)
    install.rollback(op)


# -- clones ------------------------------------------------------------------------
def provision(op: Operation) -> None:
    """The ``provision`` operation's body: install; a clone (a store
    created from a backup, ``target_backup_id``) is then restored from it,
    and the restore's restart moves the data to the clone's own address
    (WooCommerce's setup Job replaces the stored URL; Medusa's URLs come
    from the values)."""
    store = op.store
    if not store.target_backup_id:
        install.install(op)
        return
    source = Backup.objects.filter(pk=store.target_backup_id,
                                   status=c.BACKUP_SUCCEEDED).first()
    if source is None:
        raise errors.RestoreFailed(f"Backup {store.target_backup_id} to copy from is gone "
                                   "(expired, or its store's backups were removed).")
    install.install(op, before_ready=lambda op: restore_into(op, source))


# -- restore -----------------------------------------------------------------------
def restore(op: Operation) -> None:
    """The ``restore`` operation's body: replace the store's database and
    files with those of ``Store.target_backup_id``."""
    store = op.store
    chosen = Backup.objects.filter(pk=store.target_backup_id,
                                   status=c.BACKUP_SUCCEEDED).first()
    if chosen is None:
        raise errors.RestoreFailed(f"Backup {store.target_backup_id} is not a good backup "
                                   "of this store any more.")
    # A failed store's restore is asked with skip_backup: its database may
    # be what is broken (stores.services.restore_store).
    try:
        safety = before(op, c.BACKUP_PRE_RESTORE)
    except errors.BackupFailed as exc:
        op.finish(c.READY, message=f"Nothing was restored: the safety backup failed. "
                  f"{exc.message}")
        return
    restore_into(op, chosen)
    note = f" The data it replaced is in backup {safety.id}." if safety else ""
    op.finish(c.READY, message=f"Restored from backup {chosen.id}, taken "
              f"{chosen.created_at:%Y-%m-%d %H:%M} UTC.{note}",
              health_checked_at=timezone.now())


def restore_into(op: Operation, chosen: Backup) -> None:
    """The restore's steps, shared with a clone: stop the shop, run the
    restore Job with ``chosen``, start the shop and probe it."""
    store = op.store
    helm_client = helm.Helm(store.id, tick=op.tick)
    install.recover_release(op, helm_client)
    install.upgrade_release(op, helm_client, "Stopping the shop for the restore",
                            overrides={"maintenance": True})
    _hand_keys(store, storage())
    with op.step(f"Restoring backup {chosen.id}"):
        _run_job(op, chosen, "restore", env=job_env(chosen), failure=errors.RestoreFailed)
    _release, values = install.upgrade_release(op, helm_client, "Starting the shop again")
    install.check_storefronts(op, install.storefront_urls(values))
