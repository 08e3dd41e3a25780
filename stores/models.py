"""What a store is: the store itself, its timeline, its commands, quotas."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets
import string

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models
from django.utils import timezone
from knox.models import AbstractAuthToken

from stores import constants as c
from stores import notification_types

log = logging.getLogger(__name__)

ID_ALPHABET = string.ascii_lowercase + string.digits


def new_store_id() -> str:
    """A random, immutable, DNS-safe id: a letter then nine letters or digits."""
    return secrets.choice(string.ascii_lowercase) + "".join(
        secrets.choice(ID_ALPHABET) for _ in range(9)
    )


class Store(models.Model):
    id = models.CharField(primary_key=True, max_length=12, default=new_store_id, editable=False)
    # NULL while the store waits in the warm pool (status pooled, issue 13).
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="stores",
                              null=True, blank=True)
    name = models.CharField(max_length=c.NAME_MAX_LENGTH)
    slug = models.SlugField(max_length=63)
    host = models.CharField(max_length=253)
    engine = models.CharField(max_length=20)

    status = models.CharField(max_length=20, choices=c.STATUS_CHOICES, default=c.REQUESTED)
    status_reason = models.CharField(max_length=40, blank=True)
    status_message = models.TextField(blank=True)
    diagnostics = models.JSONField(default=dict, blank=True)
    current_step = models.CharField(max_length=80, blank=True)
    step_started_at = models.DateTimeField(null=True, blank=True)

    # The operation in flight and the worker lease on it (see provisioning.lease).
    operation = models.CharField(max_length=20, choices=c.OPERATION_CHOICES, blank=True)
    attempt = models.PositiveIntegerField(default=0)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    chart_version = models.CharField(max_length=40, blank=True)
    helm_revision = models.PositiveIntegerField(null=True, blank=True)
    # The revision a requested rollback goes back to.
    target_revision = models.PositiveIntegerField(null=True, blank=True)
    health_checked_at = models.DateTimeField(null=True, blank=True)
    # The host the release serves as the store's public address (a custom
    # domain made primary), as set by the last address change; "" = ``host``.
    public_host = models.CharField(max_length=253, blank=True)
    # The release's values switch `suspended` (issue 13): set when a suspend
    # is requested, cleared when a resume is. Every operation generates its
    # values from it, so an upgrade of a paused store keeps it paused.
    suspended = models.BooleanField(default=False)
    # Backups (issue 12): the backup a requested restore brings back, and an
    # operator's audited choice to upgrade without the backup first.
    target_backup_id = models.CharField(max_length=12, blank=True)
    skip_backup = models.BooleanField(default=False)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [
            models.Index(fields=["owner", "-created_at", "id"], name="store_owner_created"),
            models.Index(fields=["-created_at", "id"], name="store_created"),
            models.Index(fields=["owner", "updated_at"], name="store_owner_updated"),
            models.Index(fields=["updated_at"], name="store_updated"),
            models.Index(fields=["status", "lease_expires_at"], name="store_status_lease"),
            models.Index(fields=["engine", "status"], name="store_engine_status"),
            # The paused page finds a store by the Host of a request (issue 13).
            models.Index(fields=["host"], name="store_host"),
        ]
        constraints = [
            # Hosts are unique among stores that still exist.
            models.UniqueConstraint(
                fields=["slug"], condition=~models.Q(status=c.DELETED), name="store_live_slug"
            ),
        ]
        # Acting on someone else's store takes one of these (or Django's
        # view/change/delete), in the API as in admin: stores.permissions.
        permissions = [
            ("upgrade_store", "Can upgrade any store"),
            ("rollback_store", "Can roll back any store"),
            ("retry_store", "Can retry any store"),
            ("force_fail_store", "Can force-fail any store"),
            ("suspend_store", "Can suspend any store"),
            ("resume_store", "Can resume any store"),
            ("backup_store", "Can back up any store"),
            ("restore_store", "Can restore any store from a backup"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def namespace(self) -> str:
        return f"store-{self.id}"

    @property
    def release(self) -> str:
        return f"store-{self.id}"

    @property
    def storefront_url(self) -> str:
        return f"{settings.STORE_SCHEME}://{self.host}/"

    @property
    def admin_url(self) -> str:
        host = self.public_host or self.host
        return f"{settings.STORE_SCHEME}://{host}{c.ENGINE_ADMIN_PATHS[self.engine]}"

    @property
    def primary_url(self) -> str:
        """Where shoppers go: the primary custom domain once the release serves
        it, else the platform host (which then redirects there)."""
        return f"{settings.STORE_SCHEME}://{self.public_host or self.host}/"

    @property
    def status_title(self) -> str:
        """The reason in a few words, with the HTTP status a cluster answered
        when that is what it turned on."""
        title = c.REASON_TITLES.get(self.status_reason, "")
        http_status = (self.diagnostics or {}).get("http_status")
        return f"{title} (HTTP {http_status})" if title and http_status else title

    @property
    def status_advice(self) -> str:
        """What to do next about the reason."""
        return c.REASON_ADVICE.get(self.status_reason, "")

    @property
    def raw_output(self) -> str:
        """What the failing tool said, word for word: helm's error output or
        the Kubernetes API's answer (shown once, folded away)."""
        diagnostics = self.diagnostics or {}
        return diagnostics.get("helm_stderr") or diagnostics.get("raw") or ""

    @property
    def is_busy(self) -> bool:
        return self.status in c.BUSY_STATES


def new_backup_id() -> str:
    return "b" + new_store_id()[1:]


class Backup(models.Model):
    """One backup of a store: its database and its files, as objects under
    ``location`` with a manifest (issue 12, provisioning/backups.py).

    A backup is good (``succeeded``) only once the Job that wrote it read
    every part back and the platform found each part where the manifest
    says, at the size it says."""

    id = models.CharField(primary_key=True, max_length=12, default=new_backup_id,
                          editable=False)
    store = models.ForeignKey(Store, models.CASCADE, related_name="backups")
    kind = models.CharField(max_length=12, choices=c.BACKUP_KIND_CHOICES)
    status = models.CharField(max_length=10, choices=c.BACKUP_STATUS_CHOICES,
                              default=c.BACKUP_PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    size = models.BigIntegerField(null=True, blank=True)  # bytes, every part
    # sha256 of the manifest, which holds each part's own sha256.
    sha256 = models.CharField(max_length=64, blank=True)
    location = models.CharField(max_length=500, blank=True)  # s3://bucket/prefix/
    verified_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    pinned = models.BooleanField(default=False)  # kept beyond STORE_BACKUP_KEEP
    actor = models.CharField(max_length=80, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["store", "-created_at"], name="backup_store_created"),
                   models.Index(fields=["status", "finished_at"], name="backup_status")]

    def __str__(self) -> str:
        return f"{self.store_id}/{self.id}"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


def new_domain_token() -> str:
    return secrets.token_urlsafe(24)


class Domain(models.Model):
    """A host name of the owner's that serves their store (issue 11).

    The owner proves control with a TXT record holding ``verification_token``
    and points the name at the platform; the store's release then serves it
    with a certificate of its own. Each status change is an event on the
    store's timeline (stores.domains).
    """

    store = models.ForeignKey(Store, models.CASCADE, related_name="domains")
    hostname = models.CharField(max_length=253, unique=True)
    status = models.CharField(max_length=24, choices=c.DOMAIN_STATUS_CHOICES,
                              default=c.DOMAIN_PENDING)
    verification_token = models.CharField(max_length=64, default=new_domain_token)
    verified_at = models.DateTimeField(null=True, blank=True)
    # "", pending, issued or failed: what cert-manager said last.
    certificate_state = models.CharField(max_length=20, blank=True)
    is_primary = models.BooleanField(default=False)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["store"], condition=models.Q(is_primary=True),
                                    name="domain_one_primary_per_store"),
        ]

    def __str__(self) -> str:
        return self.hostname

    @property
    def challenge_name(self) -> str:
        return f"{c.DOMAIN_CHALLENGE_PREFIX}.{self.hostname}"

    @property
    def url(self) -> str:
        return f"{settings.STORE_SCHEME}://{self.hostname}/"


class StoreEvent(models.Model):
    """An append-only line in a store's timeline."""

    store = models.ForeignKey(Store, models.CASCADE, related_name="events")
    created_at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=10, choices=c.EVENT_KIND_CHOICES)
    status_from = models.CharField(max_length=20, blank=True)
    status_to = models.CharField(max_length=20, blank=True)
    step = models.CharField(max_length=80, blank=True)
    message = models.TextField(blank=True)
    reason = models.CharField(max_length=40, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    actor = models.CharField(max_length=80, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["store", "id"], name="event_store_id")]

    def __str__(self) -> str:
        if self.kind == c.EVENT_STATUS:
            return f"{self.status_from or '-'} -> {self.status_to}"
        return self.step or self.message[:60]


class CommandRecord(models.Model):
    """One helm or Kubernetes call made for a store, secrets masked."""

    store = models.ForeignKey(Store, models.CASCADE, related_name="commands")
    tool = models.CharField(max_length=10)
    argv = models.JSONField(default=list)
    exit_code = models.IntegerField(null=True, blank=True)
    stdout = models.TextField(blank=True)
    stderr = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["store", "id"], name="command_store_id")]

    def __str__(self) -> str:
        return " ".join(self.argv)[:120]


class Revision(models.Model):
    """One revision of a store's helm release, as ``helm history`` reported
    it after the last operation that changed the release. Pages and the API
    read these; they never run helm."""

    store = models.ForeignKey(Store, models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=30)
    chart = models.CharField(max_length=80)
    app_version = models.CharField(max_length=40, blank=True)
    description = models.TextField(blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["store", "number"], name="revision_store_number"),
        ]

    def __str__(self) -> str:
        return f"{self.store_id} r{self.number} {self.status}"

    @property
    def chart_version(self) -> str:
        """``woocommerce-0.2.0`` -> ``0.2.0`` (helm joins name and version
        with a hyphen; the version starts at the first "-<digit>")."""
        match = re.match(r"^.*?-(\d.*)$", self.chart)
        return match.group(1) if match else ""


class Quota(models.Model):
    """A per-user override of STORE_MAX_PER_USER."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, models.CASCADE, related_name="quota")
    max_stores = models.PositiveIntegerField()
    note = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user}: {self.max_stores} stores"


class CredentialsUnreadable(Exception):
    """Stored credentials that none of the configured keys can decrypt."""

    def __init__(self, store_id: str):
        self.store_id = store_id
        self.message = (
            "This store's credentials cannot be decrypted with the platform's current "
            "STORE_CREDENTIALS_KEY. An operator must add the key they were encrypted with "
            "back to STORE_CREDENTIALS_KEY (newest first, comma separated) and run "
            "`manage.py reencrypt_credentials`."
        )
        super().__init__(f"store={store_id}: {self.message}")


def credentials_fernets() -> list[Fernet]:
    """One Fernet per configured key (STORE_CREDENTIALS_KEY), newest first."""
    return [
        Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))
        for key in settings.STORE_CREDENTIALS_KEYS
    ]


def credentials_fernet() -> MultiFernet:
    """The newest key encrypts, any configured key decrypts (cryptography's
    MultiFernet), so keys rotate without losing a row."""
    return MultiFernet(credentials_fernets())


class StoreCredentials(models.Model):
    """Passwords generated once per store, encrypted at rest.

    They are reused on every retry and upgrade: a regenerated database
    password against a kept volume would lock the shop out of its database.
    """

    store = models.OneToOneField(Store, models.CASCADE, primary_key=True, related_name="creds")
    encrypted = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"credentials of {self.store_id}"

    @property
    def values(self) -> dict[str, str]:
        """The decrypted values; CredentialsUnreadable when no key fits."""
        try:
            return json.loads(credentials_fernet().decrypt(self.encrypted.encode()))
        except InvalidToken as exc:
            # The operator's problem, not the owner's: say it where they look.
            log.error("store=%s: its credentials cannot be decrypted with any key in "
                      "STORE_CREDENTIALS_KEY (was a key removed?)", self.store_id)
            raise CredentialsUnreadable(self.store_id) from exc

    @staticmethod
    def encrypt(values: dict[str, str]) -> str:
        return credentials_fernet().encrypt(json.dumps(values).encode()).decode()

    def reencrypt(self) -> bool:
        """Encrypt again with the newest key; False if it already was."""
        fernets = credentials_fernets()
        token = self.encrypted.encode()
        try:
            fernets[0].decrypt(token)
            return False
        except InvalidToken:
            pass
        try:
            rotated = MultiFernet(fernets).rotate(token).decode()
        except InvalidToken as exc:
            raise CredentialsUnreadable(self.store_id) from exc
        # Conditional: a row rewritten meanwhile is left to the next run.
        StoreCredentials.objects.filter(pk=self.pk, encrypted=self.encrypted).update(
            encrypted=rotated)
        self.encrypted = rotated
        return True


class Orphan(models.Model):
    """A namespace carrying our labels that belongs to no live store.

    Found by the periodic sweep; removed once it has been seen for longer
    than the grace period (unless the sweep runs in dry-run mode).
    """

    namespace = models.CharField(max_length=63, unique=True)
    store_id = models.CharField(max_length=12, blank=True)
    why = models.CharField(max_length=200)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return self.namespace


class PoolPolicy(models.Model):
    """How many pooled stores of an engine the warm pool keeps (issue 13).

    A row overrides the STORE_POOL_SIZE_<ENGINE> setting; stores/pool.py
    keeps the pool at this size."""

    engine = models.CharField(max_length=20, unique=True,
                              choices=[(name, name) for name in c.ENGINE_ADMIN_PATHS])
    size = models.PositiveIntegerField(
        default=0, help_text="Pooled stores to keep ready for this engine (0: no pool).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "warm pool policy"
        verbose_name_plural = "warm pool policies"

    def __str__(self) -> str:
        return f"{self.engine}: {self.size}"


class FleetUpgrade(models.Model):
    """One fleet upgrade run (see stores.fleet)."""

    RUNNING, DONE, STOPPED = "running", "done", "stopped"

    engine = models.CharField(max_length=20)
    target_version = models.CharField(max_length=40)
    batch_size = models.PositiveIntegerField(default=5)
    canary = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=10, default=RUNNING,
                              choices=[(s, s) for s in (RUNNING, DONE, STOPPED)])
    total = models.PositiveIntegerField(default=0)
    remaining = models.JSONField(default=list, blank=True)
    current = models.JSONField(default=list, blank=True)
    upgraded = models.JSONField(default=list, blank=True)
    skipped = models.JSONField(default=list, blank=True)
    failed = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True,
                                   blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.engine} -> {self.target_version} ({self.status})"

    @property
    def done_count(self) -> int:
        return len(self.upgraded) + len(self.skipped) + len(self.failed)


class AuditEntryIsAppendOnly(Exception):
    pass


class AuditEntryQuerySet(models.QuerySet):
    # Bulk writes go around save() and delete(): refuse them too. (A user's
    # deletion still nulls ``actor`` through the base manager; ``actor_name``
    # keeps who it was.)
    def update(self, **kwargs):
        raise AuditEntryIsAppendOnly("Audit entries cannot be changed.")

    def delete(self):
        raise AuditEntryIsAppendOnly("Audit entries cannot be deleted.")


class AuditEntry(models.Model):
    """Who did what to which store, when, and from where. Append-only:
    an entry is written once and never changed or deleted, by anyone."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=40, db_index=True)
    store_id = models.CharField(max_length=12, blank=True, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    via = models.CharField(max_length=10, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "audit entries"
        # No change or delete permission exists to be granted.
        default_permissions = ("add", "view")

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.store_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditEntryIsAppendOnly("Audit entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditEntryIsAppendOnly("Audit entries cannot be deleted.")


class ApiToken(AbstractAuthToken):
    """An API token (django-rest-knox): only a hash (``digest``) and the
    first characters (``token_key``, shown as the prefix) are stored; the
    token itself is shown once, when it is created."""

    name = models.CharField(max_length=80, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name or 'token'} {self.token_key}… ({self.user})"

    @property
    def prefix(self) -> str:
        return self.token_key

    @property
    def is_expired(self) -> bool:
        return self.expiry is not None and self.expiry <= timezone.now()

# --- Accounts and notifications ---------------------------------------------
# Sign-up, e-mail verification and the owner's notification settings; the
# outbox cursor; webhook endpoints and their delivery log (stores.webhooks).


class Account(models.Model):
    """What the platform keeps about a person besides Django's user row.

    Users created by an operator have no row and count as verified; a
    person who signed up in ``open`` mode verifies their address before
    their first store.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, models.CASCADE, primary_key=True,
                                related_name="account")
    verification_required = models.BooleanField(default=False)
    email_verified_at = models.DateTimeField(null=True, blank=True)
    # A new address the owner asked for; it replaces the old one once its
    # link is opened.
    pending_email = models.EmailField(blank=True)
    # Notification types (stores.notification_types) sent by e-mail.
    email_events = models.JSONField(default=notification_types.email_defaults, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"account of {self.user_id}"

    @property
    def is_verified(self) -> bool:
        return not self.verification_required or self.email_verified_at is not None


class Invitation(models.Model):
    """An operator's invitation to sign up (STORE_SIGNUP=invite). The link
    carries a signed, expiring reference to this row; it works once."""

    email = models.EmailField()
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True,
                                   blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True,
                                    blank=True, related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.email


class NotificationCursor(models.Model):
    """How far the outbox has read the store events (by id)."""

    name = models.CharField(primary_key=True, max_length=40)
    last_event_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} at event {self.last_event_id}"


class OutgoingEmail(models.Model):
    """A notification e-mail, sent by a task and retried a few times."""

    PENDING, SENT, FAILED = "pending", "sent", "failed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    to = models.EmailField()
    event_type = models.CharField(max_length=40)
    # "evt_..." of the store event, or a name of its own ("endpoint-disabled-7-...").
    event_id = models.CharField(max_length=80)
    store_id = models.CharField(max_length=12, blank=True)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    status = models.CharField(max_length=10, default=PENDING,
                              choices=[(s, s) for s in (PENDING, SENT, FAILED)])
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="email_due")]
        constraints = [
            models.UniqueConstraint(fields=["user", "event_id"], name="email_user_event"),
        ]

    def __str__(self) -> str:
        return f"{self.to}: {self.subject}"


class WebhookEndpoint(models.Model):
    """An owner's URL that receives signed notifications (Standard Webhooks)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE,
                              related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list)
    # "whsec_..." secrets, encrypted like store credentials. During a rotation
    # the previous one also signs until previous_secret_until.
    secret_encrypted = models.TextField()
    previous_secret_encrypted = models.TextField(blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    # One worker delivers to an endpoint at a time, in event order.
    delivering_until = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url

    @property
    def secret(self) -> str:
        return credentials_fernet().decrypt(self.secret_encrypted.encode()).decode()

    @property
    def signing_secrets(self) -> list[str]:
        """The current secret, and the previous one while it is still honoured."""
        secrets_ = [self.secret]
        if self.previous_secret_encrypted and self.previous_secret_until and (
                self.previous_secret_until > timezone.now()):
            previous = self.previous_secret_encrypted.encode()
            secrets_.append(credentials_fernet().decrypt(previous).decode())
        return secrets_

    @staticmethod
    def encrypt(secret: str) -> str:
        return credentials_fernet().encrypt(secret.encode()).decode()


class WebhookDelivery(models.Model):
    """One message to one endpoint; its attempts are the delivery log."""

    PENDING, SUCCEEDED, FAILED, CANCELLED = "pending", "succeeded", "failed", "cancelled"

    endpoint = models.ForeignKey(WebhookEndpoint, models.CASCADE, related_name="deliveries")
    # The webhook-id header: the same on every attempt and redelivery.
    event_id = models.CharField(max_length=80)
    event_type = models.CharField(max_length=40)
    payload = models.JSONField()
    status = models.CharField(max_length=10, default=PENDING, choices=[
        (s, s) for s in (PENDING, SUCCEEDED, FAILED, CANCELLED)])
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    redelivery_of = models.ForeignKey("self", models.SET_NULL, null=True, blank=True,
                                      related_name="redeliveries")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["endpoint", "status", "next_attempt_at"],
                         name="delivery_endpoint_due"),
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_id"],
                                    condition=models.Q(redelivery_of__isnull=True),
                                    name="delivery_endpoint_event"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} -> {self.endpoint_id}"


class DeliveryAttempt(models.Model):
    """One HTTP request of a delivery: what the endpoint answered, how fast."""

    delivery = models.ForeignKey(WebhookDelivery, models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.status_code or self.error}"

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
