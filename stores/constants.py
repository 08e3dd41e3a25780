"""Store states, the legal moves between them, and failure reasons.

*Where a store is* (its status) is kept apart from *why* (a reason code and a
plain-words message). A status changes only through
``stores.transitions.transition``, which checks this table.
"""

REQUESTED = "requested"
PROVISIONING = "provisioning"
READY = "ready"
FAILED = "failed"
DELETING = "deleting"
DELETED = "deleted"
UPGRADING = "upgrading"
ROLLING_BACK = "rolling_back"
# Ready once, but a periodic check found it unhealthy; returns to ready on
# its own when healthy again.
DEGRADED = "degraded"
# The release gains or loses host names and the engine moves to its primary URL.
CHANGING_URL = "changing_url"
# --- Suspend and resume (issue 13) ---
# Paused: the release stays deployed with its values switch `suspended` on
# (no pods, volumes and Secrets kept); its host shows the platform's paused page.
SUSPENDING = "suspending"
SUSPENDED = "suspended"
RESUMING = "resuming"
# --- Warm pool (issue 13) ---
# A provisioned store with no owner, a generic name and host, waiting to be
# claimed by a create (stores/pool.py); invisible to users, not in any quota.
POOLED = "pooled"
# A pooled store becoming someone's: renamed, re-hosted, one helm upgrade.
CLAIMING = "claiming"
# --- Backups and restores (issue 12) ---
# A backup Job runs in the store's namespace; the shop keeps serving.
BACKING_UP = "backing_up"
# The shop's workloads are stopped while its database and files are replaced.
RESTORING = "restoring"

STATUS_CHOICES = [
    (REQUESTED, "Requested"),
    (PROVISIONING, "Provisioning"),
    (READY, "Ready"),
    (FAILED, "Failed"),
    (DELETING, "Deleting"),
    (DELETED, "Deleted"),
    (UPGRADING, "Upgrading"),
    (ROLLING_BACK, "Rolling back"),
    (DEGRADED, "Degraded"),
    (CHANGING_URL, "Changing address"),
    (SUSPENDING, "Suspending"),
    (SUSPENDED, "Suspended"),
    (RESUMING, "Resuming"),
    (POOLED, "Pooled"),
    (CLAIMING, "Claiming"),
    (BACKING_UP, "Backing up"),
    (RESTORING, "Restoring"),
]

# States in which a worker is (or should be) doing something for the store.
BUSY_STATES = frozenset(
    {REQUESTED, PROVISIONING, DELETING, UPGRADING, ROLLING_BACK, CHANGING_URL,
     SUSPENDING, RESUMING, CLAIMING, BACKING_UP, RESTORING}
)
# Stores that count against an owner's quota.
LIVE_STATES = frozenset(
    {REQUESTED, PROVISIONING, READY, FAILED, DELETING, UPGRADING, ROLLING_BACK, DEGRADED,
     CHANGING_URL, SUSPENDING, SUSPENDED, RESUMING, CLAIMING, BACKING_UP, RESTORING}
)
# Stores whose release is installed and serving (or meant to be).
RUNNING_STATES = frozenset({READY, DEGRADED})

TRANSITIONS: dict[str, frozenset[str]] = {
    REQUESTED: frozenset({PROVISIONING, FAILED, DELETING}),
    PROVISIONING: frozenset({READY, POOLED, FAILED, DELETING}),
    READY: frozenset({DELETING, UPGRADING, ROLLING_BACK, DEGRADED, CHANGING_URL, SUSPENDING,
                      BACKING_UP, RESTORING}),
    DEGRADED: frozenset({READY, DELETING, UPGRADING, ROLLING_BACK, FAILED, CHANGING_URL,
                         SUSPENDING, BACKING_UP, RESTORING}),
    # An upgrade of a suspended store leaves it suspended; of a pooled one, pooled.
    UPGRADING: frozenset({READY, POOLED, SUSPENDED, FAILED, DELETING}),
    ROLLING_BACK: frozenset({READY, POOLED, FAILED, DELETING}),
    CHANGING_URL: frozenset({READY, FAILED, DELETING}),
    SUSPENDING: frozenset({SUSPENDED, FAILED, DELETING}),
    # A suspended pooled store is claimed, and resumed by its claim (STORE_POOL_SUSPENDED).
    SUSPENDED: frozenset({RESUMING, UPGRADING, DELETING, CLAIMING}),
    RESUMING: frozenset({READY, FAILED, DELETING}),
    POOLED: frozenset({CLAIMING, DELETING, UPGRADING, ROLLING_BACK, SUSPENDING}),
    CLAIMING: frozenset({READY, FAILED, DELETING}),
    # A failed backup is the Backup's, not the store's: the store goes back
    # to ready (the health check says if it is not). Failed is for a backup
    # operation that itself broke (its worker crashed past its deadline).
    BACKING_UP: frozenset({READY, FAILED, DELETING}),
    RESTORING: frozenset({READY, FAILED, DELETING}),
    FAILED: frozenset({REQUESTED, DELETING, UPGRADING, ROLLING_BACK, CHANGING_URL, SUSPENDING,
                       RESUMING, CLAIMING, RESTORING, BACKING_UP}),
    DELETING: frozenset({DELETED, FAILED}),
    DELETED: frozenset(),
}

# Who may retry what. Retrying a failed delete resumes the delete, a failed
# upgrade runs the upgrade again.
RETRYABLE_STATES = frozenset({FAILED})
DELETABLE_STATES = frozenset(
    {REQUESTED, PROVISIONING, READY, FAILED, UPGRADING, ROLLING_BACK, DEGRADED, CHANGING_URL,
     SUSPENDING, SUSPENDED, RESUMING, POOLED, CLAIMING, BACKING_UP, RESTORING}
)
# An upgrade or rollback needs a release to act on.
UPGRADABLE_STATES = frozenset({READY, DEGRADED, FAILED, POOLED})
# What a fleet upgrade moves to the current chart: running stores, the pool,
# and paused stores (which stay paused).
FLEET_UPGRADE_STATES = frozenset({READY, DEGRADED, POOLED, SUSPENDED})
# Suspend pauses a running store; resume brings a suspended one back.
SUSPENDABLE_STATES = RUNNING_STATES
RESUMABLE_STATES = frozenset({SUSPENDED})
# A backup needs the shop's database running; a restore replaces a running
# store's data, or brings back a failed one's.
BACKUP_STATES = RUNNING_STATES
RESTORABLE_STATES = frozenset({READY, DEGRADED, FAILED})

# Operations a worker carries out.
OP_PROVISION = "provision"
OP_DELETE = "delete"
OP_UPGRADE = "upgrade"
OP_ROLLBACK = "rollback"
OP_CHANGE_URL = "change_url"
OP_SUSPEND = "suspend"
OP_RESUME = "resume"
OP_CLAIM = "claim"  # a pooled store becomes a user's (provisioning/claim.py)
OP_BACKUP = "backup"  # provisioning/backups.py
OP_RESTORE = "restore"
OPERATION_CHOICES = [
    (OP_PROVISION, "Provision"), (OP_DELETE, "Delete"), (OP_UPGRADE, "Upgrade"),
    (OP_ROLLBACK, "Rollback"), (OP_CHANGE_URL, "Change address"),
    (OP_SUSPEND, "Suspend"), (OP_RESUME, "Resume"), (OP_CLAIM, "Claim"),
    (OP_BACKUP, "Backup"), (OP_RESTORE, "Restore"),
]
# The busy state each operation runs in.
OPERATION_STATES = {
    OP_PROVISION: PROVISIONING, OP_DELETE: DELETING, OP_UPGRADE: UPGRADING,
    OP_ROLLBACK: ROLLING_BACK, OP_CHANGE_URL: CHANGING_URL,
    OP_SUSPEND: SUSPENDING, OP_RESUME: RESUMING, OP_CLAIM: CLAIMING,
    OP_BACKUP: BACKING_UP, OP_RESTORE: RESTORING,
}
# The state a requested operation waits in for a worker: its busy state,
# except a new store, which is "requested" until a worker picks it up.
REQUEST_STATES = {**OPERATION_STATES, OP_PROVISION: REQUESTED}

# Failure reasons: short codes for machines, titles for people.
REASON_CLUSTER_UNREACHABLE = "cluster_unreachable"
REASON_CLUSTER_THROTTLED = "cluster_throttled"
REASON_TIMED_OUT = "timed_out"
REASON_QUOTA_EXCEEDED = "quota_exceeded"
REASON_CHART_ERROR = "chart_error"
REASON_RELEASE_LOCKED = "release_locked"
REASON_STOREFRONT_DOWN = "storefront_unreachable"
REASON_NAMESPACE_STUCK = "namespace_stuck"
REASON_HELM_FAILED = "helm_failed"
REASON_WORKER_LOST = "worker_lost"
REASON_FORCE_FAILED = "force_failed"
REASON_NOT_CONFIGURED = "cluster_not_configured"
REASON_INTERNAL = "internal_error"
REASON_RELEASE_NOT_DEPLOYED = "release_not_deployed"
REASON_PODS_NOT_READY = "pods_not_ready"
# The Kubernetes API answered, and said no (a 4xx that is not a quota or
# throttling answer): retrying would get the same answer.
REASON_CLUSTER_UNAUTHORIZED = "cluster_unauthorized"  # 401
REASON_CLUSTER_FORBIDDEN = "cluster_forbidden"  # 403
REASON_CLUSTER_REJECTED = "cluster_rejected"  # any other 4xx
REASON_CREDENTIALS_UNREADABLE = "credentials_unreadable"
REASON_CERTIFICATE_NOT_ISSUED = "certificate_not_issued"
REASON_CERTIFICATE_INVALID = "certificate_invalid"
REASON_BACKUP_FAILED = "backup_failed"
REASON_RESTORE_FAILED = "restore_failed"

REASON_TITLES = {
    REASON_CLUSTER_UNREACHABLE: "The Kubernetes cluster could not be reached",
    REASON_CLUSTER_THROTTLED: "The Kubernetes API is throttling requests",
    REASON_TIMED_OUT: "Timed out waiting for the store's pods to become ready",
    REASON_QUOTA_EXCEEDED: "The store's resource quota was exceeded",
    REASON_CHART_ERROR: "The store's chart or its values are invalid",
    REASON_RELEASE_LOCKED: "Another helm operation holds the release",
    REASON_STOREFRONT_DOWN: "The storefront did not answer",
    REASON_NAMESPACE_STUCK: "The store's namespace is stuck terminating",
    REASON_HELM_FAILED: "helm failed",
    REASON_WORKER_LOST: "The worker running this store stopped",
    REASON_FORCE_FAILED: "Stopped by an operator",
    REASON_NOT_CONFIGURED: "No Kubernetes cluster is configured",
    REASON_INTERNAL: "Something went wrong inside the platform",
    REASON_RELEASE_NOT_DEPLOYED: "The store's helm release is not deployed",
    REASON_PODS_NOT_READY: "Some of the store's pods are not ready",
    REASON_CLUSTER_UNAUTHORIZED: "The cluster did not accept the platform's credentials",
    REASON_CLUSTER_FORBIDDEN: "The cluster does not allow the platform to do this",
    # The page adds the HTTP status when it is known: "... (HTTP 400)".
    REASON_CLUSTER_REJECTED: "The Kubernetes API refused the request",
    REASON_CREDENTIALS_UNREADABLE: "The store's credentials cannot be decrypted",
    REASON_CERTIFICATE_NOT_ISSUED: "The store's TLS certificate was not issued",
    REASON_CERTIFICATE_INVALID: "The store's TLS certificate is not valid",
    REASON_BACKUP_FAILED: "The backup taken before the operation failed",
    REASON_RESTORE_FAILED: "The restore did not finish",
}

# What to do next, by reason: shown under a failure's title and sentence.
REASON_ADVICE = {
    REASON_CLUSTER_UNREACHABLE: "Retry once the cluster is back. If it keeps failing, the "
    "platform's operator should check that the cluster is running and that the platform's "
    "kubeconfig points at it.",
    REASON_CLUSTER_THROTTLED: "The cluster is busy. Retry in a minute.",
    REASON_TIMED_OUT: "The pods and warnings below usually say why (an image that cannot be "
    "pulled, a volume that cannot be bound, not enough CPU or memory). Retry; if it fails the "
    "same way, ask the platform's operator.",
    REASON_QUOTA_EXCEEDED: "The store needs more CPU, memory or storage than its quota "
    "allows. Ask the platform's operator to raise it, then retry.",
    REASON_CHART_ERROR: "This is a fault in the platform's chart or settings, not in your "
    "store, so a retry fails the same way. Tell the platform's operator; the details are what "
    "they need.",
    REASON_RELEASE_LOCKED: "Another operation was still holding the store. Retry in a minute.",
    REASON_STOREFRONT_DOWN: "The store was installed, but its address did not answer. Check "
    "that the address leads to the cluster's ingress, then retry.",
    REASON_NAMESPACE_STUCK: "Something in the cluster is holding on to the store's namespace. "
    "The platform tries the deletion again by itself every few minutes; its operator can see "
    "what holds it in the admin.",
    REASON_HELM_FAILED: "Retry. If it fails the same way, tell the platform's operator; the "
    "details are what they need.",
    REASON_WORKER_LOST: "The platform resumes the operation by itself. If the store stays "
    "failed, retry.",
    REASON_FORCE_FAILED: "An operator stopped this operation. Retry when you are ready, or "
    "delete the store.",
    REASON_NOT_CONFIGURED: "The platform has no Kubernetes cluster to create stores in. Its "
    "operator must set KUBECONFIG (or create ~/.kube/config); then retry.",
    REASON_INTERNAL: "Retry. If it happens again, tell the platform's operator: the worker's "
    "log has the whole error (search it for the store's id).",
    REASON_RELEASE_NOT_DEPLOYED: "The platform checks again every minute and clears this by "
    "itself once the store is healthy. If it stays, roll back to the previous version.",
    REASON_PODS_NOT_READY: "The platform checks again every minute and clears this by itself "
    "once the pods are ready. If it stays, roll back to the previous version.",
    REASON_CLUSTER_UNAUTHORIZED: "The platform's credentials for the cluster are wrong or "
    "have expired. Its operator must renew them (the kubeconfig, or the service account's "
    "token), then retry.",
    REASON_CLUSTER_FORBIDDEN: "The platform's account in the cluster lacks a permission. Its "
    "operator must grant it (charts/platform sets up the roles the platform needs), then retry.",
    REASON_CLUSTER_REJECTED: "The cluster refused what the platform asked, so a retry will "
    "probably be refused too. Tell the platform's operator; the details show the cluster's "
    "answer.",
    REASON_CREDENTIALS_UNREADABLE: "The platform's operator must put back the key these "
    "credentials were encrypted with (README, \"Rotating the credentials key\"), then retry. "
    "New passwords would lock the shop out of its own database.",
    REASON_CERTIFICATE_NOT_ISSUED: "Check that the store's host names lead to the cluster "
    "(their DNS records), then retry. The details show what cert-manager said.",
    REASON_CERTIFICATE_INVALID: "The platform checks again every few minutes and clears this "
    "once a valid certificate is served. If it stays, the platform's operator should look at "
    "cert-manager's Certificate for the store.",
    REASON_BACKUP_FAILED: "Nothing was changed: the store still runs as before. The backup's "
    "error (on the Backups card) says why it failed; once that is fixed, retry. An operator "
    "may retry without a backup.",
    REASON_RESTORE_FAILED: "The store's data may be partly replaced. Restore again (the same "
    "backup, or the safety backup taken just before this restore, listed on the Backups "
    "card); the details say what stopped it.",
}

# Event kinds in a store's timeline.
EVENT_STATUS = "status"
EVENT_STEP = "step"
EVENT_INFO = "info"
EVENT_WARNING = "warning"
EVENT_KIND_CHOICES = [
    (EVENT_STATUS, "Status change"),
    (EVENT_STEP, "Step"),
    (EVENT_INFO, "Info"),
    (EVENT_WARNING, "Warning"),
]

# Labels that mark cluster objects as ours.
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "storeplatform"
LABEL_STORE_ID = "storeplatform.io/store-id"
LABEL_OWNER = "storeplatform.io/owner"

# The engines a store can run. How each is built (chart, values, credentials)
# is provisioning.engines; where its admin lives is part of what a store is.
ENGINE_ADMIN_PATHS = {"woocommerce": "/wp-admin/", "medusa": "/app"}

# --- HTTPS and custom domains (issue 11) ---
TLS_OFF, TLS_WILDCARD, TLS_PER_STORE = "off", "wildcard", "per-store"
TLS_MODES = (TLS_OFF, TLS_WILDCARD, TLS_PER_STORE)
# A custom domain's life: added, DNS verified, served by the release (its
# certificate issued), failed (its certificate was not issued), removing
# (the release drops it, then the row goes).
DOMAIN_PENDING = "pending_verification"
DOMAIN_VERIFIED = "verified"
DOMAIN_ACTIVE = "active"
DOMAIN_FAILED = "failed"
DOMAIN_REMOVING = "removing"
DOMAIN_STATUS_CHOICES = [
    (DOMAIN_PENDING, "Pending verification"),
    (DOMAIN_VERIFIED, "Verified"),
    (DOMAIN_ACTIVE, "Active"),
    (DOMAIN_FAILED, "Failed"),
    (DOMAIN_REMOVING, "Removing"),
]
# Domains the store's release serves (its Ingress rules and certificates).
SERVED_DOMAIN_STATES = frozenset({DOMAIN_VERIFIED, DOMAIN_ACTIVE})
# The TXT record that proves a person controls a host name.
DOMAIN_CHALLENGE_PREFIX = "_storeplatform-challenge"
# The step a store shows while cert-manager has not issued its certificate.
STEP_WAITING_FOR_CERTIFICATE = "Waiting for the certificate"

NAME_MIN_LENGTH = 3
NAME_MAX_LENGTH = 40

# --- Backups (issue 12) ---
BACKUP_SCHEDULED, BACKUP_MANUAL = "scheduled", "manual"
BACKUP_PRE_UPGRADE, BACKUP_PRE_RESTORE = "pre-upgrade", "pre-restore"
BACKUP_KIND_CHOICES = [
    (BACKUP_SCHEDULED, "Scheduled"), (BACKUP_MANUAL, "Manual"),
    (BACKUP_PRE_UPGRADE, "Before an upgrade"), (BACKUP_PRE_RESTORE, "Before a restore"),
]
BACKUP_PENDING, BACKUP_RUNNING = "pending", "running"
BACKUP_SUCCEEDED, BACKUP_FAILED, BACKUP_EXPIRED = "succeeded", "failed", "expired"
BACKUP_STATUS_CHOICES = [
    (BACKUP_PENDING, "Pending"), (BACKUP_RUNNING, "Running"), (BACKUP_SUCCEEDED, "Succeeded"),
    (BACKUP_FAILED, "Failed"), (BACKUP_EXPIRED, "Expired"),
]
BACKUP_OPEN_STATES = frozenset({BACKUP_PENDING, BACKUP_RUNNING})
