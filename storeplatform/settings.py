"""Settings for storeplatform.

Every knob an operator may turn is an environment variable, read through the
small helpers below, with a default that lets a fresh checkout run without
any setup. The README lists each variable once.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp import constants as csp
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    return env(name, str(default)).strip().lower() in ("1", "true", "yes", "on")


def env_int(name: str, default: int) -> int:
    return int(env(name, str(default)))


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def env_secret(name: str, default: str = "") -> str:
    """Read a secret from NAME, or from the file named by NAME_FILE."""
    path = env(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return env(name, default)


DEBUG = env_bool("DJANGO_DEBUG", True)
# The default key only works with DEBUG on; production must set its own.
SECRET_KEY = env_secret("DJANGO_SECRET_KEY") or (
    "dev-only-insecure-key-change-me" if DEBUG else ""
)
if not SECRET_KEY:
    raise RuntimeError("Set DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) when DEBUG is off")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "django_celery_results",
    "django_celery_beat",
    "stores",
    "provisioning",
]

MIDDLEWARE = [
    "storeplatform.middleware.ProbeMiddleware",
    # Before host validation: paused stores' hosts are not platform hosts.
    "stores.middleware.PausedStoreMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "storeplatform.middleware.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "stores.middleware.RequestBodyLimitMiddleware",
]

ROOT_URLCONF = "storeplatform.urls"
WSGI_APPLICATION = "storeplatform.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the file: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")

# Redis is the rate-limit cache and the broker. Short socket timeouts: a dead
# Redis must turn into a clear error, not a hung request.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "stores:dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Request bodies: the API takes small JSON documents only.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 16 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "stores.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "storeplatform API",
    "DESCRIPTION": "Create, watch and delete ecommerce stores on Kubernetes.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # kombu's Redis transport with a fix that keeps a busy worker alive when
    # Redis restarts (see storeplatform/broker.py).
    CELERY_BROKER_TRANSPORT = "storeplatform.broker:Transport"
# A broker restart does not cancel running operations: they are idempotent
# and run under a lease, so the redelivered message finds the work taken.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Task results are kept (django-celery-results, visible in admin); the store's
# own status and events are the source of truth, so no STARTED write.
CELERY_TASK_TRACK_STARTED = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Publishing must not hang a web request when Redis is down: fail fast, the
# reconciler dispatches whatever was persisted but not published.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Stores -----------------------------------------------------------------
HELM_BIN = env("HELM_BIN", "helm")
KUBECONFIG = env("KUBECONFIG")
CHARTS_DIR = Path(env("STORE_CHARTS_DIR", str(BASE_DIR / "charts")))
VALUES_DIR = Path(env("STORE_VALUES_DIR", str(BASE_DIR / "deploy" / "values")))
STORE_VALUES_PROFILE = env("STORE_VALUES_PROFILE", "local")
STORE_BASE_DOMAIN = env("STORE_BASE_DOMAIN", "localtest.me")
STORE_HOST_PATTERN = env("STORE_HOST_PATTERN", "{slug}.{base_domain}")
STORE_SCHEME = env("STORE_SCHEME", "http")
STORE_INGRESS_CLASS = env("STORE_INGRESS_CLASS", "")
STORE_TLS_CLUSTER_ISSUER = env("STORE_TLS_CLUSTER_ISSUER", "")
# When set, storefront probes connect here and send the store's Host header
# (the ingress controller's in-cluster address); otherwise the public URL.
STORE_INGRESS_PROBE_URL = env("STORE_INGRESS_PROBE_URL", "")
# --- Suspend and resume (issue 13) ---
# Where a suspended store's Ingress sends its visitors: the in-cluster DNS
# name and port of the platform's web Service, which answers every store host
# that is paused with the "This store is paused" page (stores.middleware).
# The store chart reaches it through an ExternalName Service. "" = no paused
# page: the ingress controller answers 503 for a suspended store.
STORE_PAUSED_BACKEND = env("STORE_PAUSED_BACKEND", "")
STORE_PAUSED_PORT = env_int("STORE_PAUSED_PORT", 80)
STORE_PROVISION_TIMEOUT = env_int("STORE_PROVISION_TIMEOUT", 600)
STORE_DELETE_TIMEOUT = env_int("STORE_DELETE_TIMEOUT", 300)
STORE_READY_PROBE_TIMEOUT = env_int("STORE_READY_PROBE_TIMEOUT", 60)
STORE_MAX_PER_USER = env_int("STORE_MAX_PER_USER", 3)
STORE_HELM_HISTORY_MAX = env_int("STORE_HELM_HISTORY_MAX", 5)
# A global cap on helm processes running at once across all workers.
STORE_MAX_CONCURRENT_HELM = env_int("STORE_MAX_CONCURRENT_HELM", 8)
# How often the reconciler runs, and how long a worker's lease on a store
# lasts without a heartbeat before another worker may take over.
STORE_RECONCILE_INTERVAL = env_int("STORE_RECONCILE_INTERVAL", 30)
STORE_LEASE_SECONDS = env_int("STORE_LEASE_SECONDS", 60)
# Transient failures (cluster unreachable, throttled) are retried this many
# times, waiting STORE_RETRY_BACKOFF * 2**n seconds, within the deadline.
STORE_TRANSIENT_RETRIES = env_int("STORE_TRANSIENT_RETRIES", 4)
STORE_RETRY_BACKOFF = float(env("STORE_RETRY_BACKOFF", "2"))
STORE_HEARTBEAT_SECONDS = float(env("STORE_HEARTBEAT_SECONDS", "5"))
# How long one deletion attempt waits for the namespace to disappear.
STORE_NAMESPACE_WAIT = env_int("STORE_NAMESPACE_WAIT", 120)
# A deletion that failed (namespace stuck) is tried again this often.
STORE_DELETE_RETRY_INTERVAL = env_int("STORE_DELETE_RETRY_INTERVAL", 300)
# Drift and orphan checks (provisioning.housekeeping).
STORE_HEALTH_INTERVAL = env_int("STORE_HEALTH_INTERVAL", 60)
STORE_ORPHAN_INTERVAL = env_int("STORE_ORPHAN_INTERVAL", 300)
STORE_ORPHAN_GRACE = env_int("STORE_ORPHAN_GRACE", 3600)
STORE_ORPHAN_DRY_RUN = env_bool("STORE_ORPHAN_DRY_RUN", False)
# --- Store e-mail: one SMTP relay for every store ---------------------------
# Passed to each store's chart as the `smtp` values block (docs/chart-contract.md);
# the password goes into the Secret store-smtp in the store's namespace, never
# into values. Without a host, stores log their mail instead of sending it and
# the store page says so.
STORE_SMTP_HOST = env("STORE_SMTP_HOST")
STORE_SMTP_PORT = env_int("STORE_SMTP_PORT", 587)
STORE_SMTP_USER = env("STORE_SMTP_USER")
STORE_SMTP_PASSWORD = env_secret("STORE_SMTP_PASSWORD")
STORE_SMTP_FROM = env("STORE_SMTP_FROM")
STORE_SMTP_TLS = env("STORE_SMTP_TLS", "starttls")
if STORE_SMTP_HOST and not (
        all(ch.isascii() and (ch.isalnum() or ch in "-.") for ch in STORE_SMTP_HOST)
        and STORE_SMTP_HOST[0].isalnum() and STORE_SMTP_HOST[-1].isalnum()):
    raise RuntimeError(
        f"STORE_SMTP_HOST must be a host name or IPv4 address, not {STORE_SMTP_HOST!r}"
    )
if STORE_SMTP_TLS not in ("none", "starttls", "tls"):
    raise RuntimeError(
        f"STORE_SMTP_TLS must be none, starttls or tls (implicit TLS), not {STORE_SMTP_TLS!r}"
    )
if not 1 <= STORE_SMTP_PORT <= 65535:
    raise RuntimeError(f"STORE_SMTP_PORT must be a TCP port (1-65535), not {STORE_SMTP_PORT}")
_smtp_from_local, _, _smtp_from_domain = STORE_SMTP_FROM.partition("@")
if STORE_SMTP_FROM and not (
        _smtp_from_local and "@" not in _smtp_from_domain and _smtp_from_domain
        and not any(ch.isspace() or ord(ch) < 32 for ch in _smtp_from_local)
        and all(ch.isascii() and (ch.isalnum() or ch in "-.") for ch in _smtp_from_domain)):
    raise RuntimeError(
        f"STORE_SMTP_FROM must be one e-mail address (e.g. shops@example.com), "
        f"not {STORE_SMTP_FROM!r}"
    )
if any(ord(ch) < 32 or ord(ch) == 127 for ch in STORE_SMTP_USER):
    raise RuntimeError("STORE_SMTP_USER must not contain control characters")

# --- HTTPS and custom domains (issue 11; docs/vps-runbook.md) ------------------
# off: plain HTTP (a laptop). wildcard: one certificate for *.STORE_BASE_DOMAIN,
# installed as the ingress controller's default certificate by the operator.
# per-store: a certificate per store host from cert-manager (HTTP-01).
# Unset, it follows the older STORE_SCHEME (https meant per-store).
STORE_TLS_MODE = env("STORE_TLS_MODE", "per-store" if STORE_SCHEME == "https" else "off")
if STORE_TLS_MODE not in ("off", "wildcard", "per-store"):
    raise RuntimeError(f"STORE_TLS_MODE must be off, wildcard or per-store, not {STORE_TLS_MODE!r}")
if STORE_TLS_MODE == "off" and env("STORE_SCHEME") == "https":
    raise RuntimeError("STORE_SCHEME=https needs STORE_TLS_MODE=wildcard or per-store")
# Store URLs follow the TLS mode.
STORE_SCHEME = "http" if STORE_TLS_MODE == "off" else "https"
# Extra CA bundle the storefront probe trusts besides the system's (a private CA).
STORE_PROBE_CA_FILE = env("STORE_PROBE_CA_FILE")
# How long a store waits for cert-manager to issue a certificate (bounded by
# the operation's own deadline) before it fails with certificate_not_issued.
STORE_CERTIFICATE_TIMEOUT = env_int("STORE_CERTIFICATE_TIMEOUT", 300)
# Custom domains: the public addresses of the ingress controller (A/AAAA
# records of a custom domain must point at one of them; a CNAME to the
# store's platform host always works), the DNS servers asked ("ip" or
# "ip:port"; empty: the system's), the most domains a store may have, and how
# often every domain's DNS is checked again.
STORE_INGRESS_IPS = env_list("STORE_INGRESS_IPS")
STORE_DNS_RESOLVERS = env_list("STORE_DNS_RESOLVERS")
STORE_MAX_DOMAINS = env_int("STORE_MAX_DOMAINS", 5)
STORE_DOMAIN_CHECK_INTERVAL = env_int("STORE_DOMAIN_CHECK_INTERVAL", 300)
# --- end of HTTPS and custom domains ---------------------------------------------

# Rate limits for create and delete, per user and per IP (django-ratelimit).
RATELIMIT_ENABLE = env_bool("RATELIMIT_ENABLE", True)
STORE_CREATE_RATE = env("STORE_CREATE_RATE", "10/m")
STORE_DELETE_RATE = env("STORE_DELETE_RATE", "20/m")
# The request header (as a META key) that carries the client's address behind
# a proxy, e.g. HTTP_X_REAL_IP; see stores/clientip.py.
CLIENT_IP_HEADER = env("CLIENT_IP_HEADER")
RATELIMIT_IP_META_KEY = "stores.clientip.client_ip"

METRICS_TOKEN = env_secret("METRICS_TOKEN")

# The broker must keep an unacknowledged task longer than the longest
# operation, or Redis hands it to a second worker while the first still runs.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 2 * max(STORE_PROVISION_TIMEOUT, STORE_DELETE_TIMEOUT) + 900,
    "socket_connect_timeout": 2,
    "socket_timeout": 10,
}
CELERY_BEAT_SCHEDULE = {
    "reconcile-stores": {
        "task": "provisioning.tasks.reconcile",
        "schedule": float(STORE_RECONCILE_INTERVAL),
    },
    "check-store-health": {
        "task": "provisioning.housekeeping.check_health",
        "schedule": float(STORE_HEALTH_INTERVAL),
    },
    "sweep-orphans": {
        "task": "provisioning.housekeeping.sweep_orphans",
        "schedule": float(STORE_ORPHAN_INTERVAL),
    },
    "advance-fleet-upgrades": {
        "task": "stores.fleet.advance_running",
        "schedule": float(STORE_RECONCILE_INTERVAL),
    },
    "check-store-domains": {
        "task": "stores.domains.check_domains",
        "schedule": float(STORE_DOMAIN_CHECK_INTERVAL),
    },
}
CELERY_IMPORTS = ["provisioning.housekeeping", "stores.fleet", "stores.domains"]

# --- Warm pool (issue 13) ------------------------------------------------------
# Pooled stores kept provisioned per engine (stores/pool.py); a PoolPolicy row
# in admin overrides these. 0: no pool, nothing changes.
STORE_POOL_SIZE_WOOCOMMERCE = env_int("STORE_POOL_SIZE_WOOCOMMERCE", 0)
STORE_POOL_SIZE_MEDUSA = env_int("STORE_POOL_SIZE_MEDUSA", 0)
# Pooled stores kept suspended (no pods, no CPU or memory requested) once
# built; a claim then resumes the store in its one helm upgrade, which costs
# the time of the pods' start (docs/system-design.md, "Warm pool").
STORE_POOL_SUSPENDED = env_bool("STORE_POOL_SUSPENDED", False)
# How often beat tops the pool up, and how many pooled stores may be built at
# once (each takes a worker slot and a helm slot while it installs).
STORE_POOL_INTERVAL = env_int("STORE_POOL_INTERVAL", 60)
STORE_POOL_REFILL_CONCURRENCY = env_int("STORE_POOL_REFILL_CONCURRENCY", 1)
# Work on stores without an owner (pool builds, replacements) goes to this
# Celery queue, apart from users' operations. Workers started without -Q
# consume both queues; run `-Q celery` workers for users and a `-Q pool`
# worker for the pool to keep them entirely apart (docs/system-design.md).
STORE_POOL_QUEUE = env("STORE_POOL_QUEUE", "pool")
CELERY_TASK_QUEUES = [Queue("celery", routing_key="celery"),
                      Queue(STORE_POOL_QUEUE, routing_key=STORE_POOL_QUEUE)]
CELERY_IMPORTS += ["stores.pool"]
CELERY_BEAT_SCHEDULE["maintain-warm-pool"] = {
    "task": "stores.pool.maintain", "schedule": float(STORE_POOL_INTERVAL),
}
# --- end of warm pool -----------------------------------------------------------

# --- Accounts and notifications (issue 16) ----------------------------------
# Who may sign up: "open" (anyone; the e-mail address is verified before the
# first store), "invite" (operators send invitations from admin) or "closed".
STORE_SIGNUP = env("STORE_SIGNUP", "open" if DEBUG else "closed")
if STORE_SIGNUP not in ("open", "invite", "closed"):
    raise RuntimeError(f"STORE_SIGNUP must be open, invite or closed, not {STORE_SIGNUP!r}")
SIGNUP_RATE = env("SIGNUP_RATE", "10/h")  # per IP
PASSWORD_RESET_RATE = env("PASSWORD_RESET_RATE", "5/h")  # per IP and per address
# Verification, reset and invitation links stop working after this many seconds.
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 3 * 24 * 3600)
INVITATION_MAX_AGE = env_int("INVITATION_MAX_AGE", 7 * 24 * 3600)
# Where people reach this platform: links in e-mails sent by workers.
PLATFORM_URL = env("PLATFORM_URL", "http://127.0.0.1:8000").rstrip("/")
# Outgoing mail through Django's backends. With EMAIL_HOST set, SMTP; the
# dev stack sets the console backend so links show in the terminal.
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "storeplatform <noreply@localhost>")
# How often beat turns new store events into e-mails and webhook deliveries.
NOTIFY_INTERVAL = float(env("NOTIFY_INTERVAL", "5"))
# Webhooks: failed deliveries are retried with exponential backoff (base
# seconds, doubled each time, capped) for WEBHOOK_RETRY_WINDOW seconds; an
# endpoint failing for WEBHOOK_DISABLE_AFTER seconds is disabled.
WEBHOOK_TIMEOUT = float(env("WEBHOOK_TIMEOUT", "10"))
WEBHOOK_RETRY_BASE = float(env("WEBHOOK_RETRY_BASE", "30"))
WEBHOOK_RETRY_MAX_DELAY = float(env("WEBHOOK_RETRY_MAX_DELAY", str(6 * 3600)))
WEBHOOK_RETRY_WINDOW = env_int("WEBHOOK_RETRY_WINDOW", 24 * 3600)
WEBHOOK_DISABLE_AFTER = env_int("WEBHOOK_DISABLE_AFTER", 24 * 3600)
# Resolve endpoint hosts with these nameservers (comma list); empty: the system's.
WEBHOOK_DNS_SERVERS = env_list("WEBHOOK_DNS_SERVERS")
# Plain http endpoints only while developing.
WEBHOOK_REQUIRE_HTTPS = not DEBUG
# TEST ONLY: let endpoints on 127.0.0.0/8 and ::1 through (the test suite's
# receivers listen there). Never on in production: refused with DEBUG off.
WEBHOOK_TEST_ALLOW_LOOPBACK = env_bool("WEBHOOK_TEST_ALLOW_LOOPBACK", False)
if WEBHOOK_TEST_ALLOW_LOOPBACK and not DEBUG:
    raise RuntimeError("WEBHOOK_TEST_ALLOW_LOOPBACK is for the test suite; unset it")
CELERY_IMPORTS += ["stores.webhooks", "stores.notifications"]
CELERY_BEAT_SCHEDULE["notify-owners"] = {
    "task": "stores.notifications.pump", "schedule": NOTIFY_INTERVAL,
}
# --- end of accounts and notifications ----------------------------------------

# --- Backups and restores (issue 12) ------------------------------------------
# Object storage (any S3-compatible service) the stores' backups go to, under
# <STORE_BACKUP_S3_PREFIX>stores/<store id>/<backup id>/. No bucket: backups
# are off (the API says which setting is missing; upgrades go on without one).
STORE_BACKUP_S3_ENDPOINT = env("STORE_BACKUP_S3_ENDPOINT")  # "" = AWS S3
STORE_BACKUP_S3_BUCKET = env("STORE_BACKUP_S3_BUCKET")
STORE_BACKUP_S3_REGION = env("STORE_BACKUP_S3_REGION", "us-east-1")
# Files holding the access and secret key (a mounted Secret), never the keys.
STORE_BACKUP_S3_ACCESS_KEY_FILE = env("STORE_BACKUP_S3_ACCESS_KEY_FILE")
STORE_BACKUP_S3_SECRET_KEY_FILE = env("STORE_BACKUP_S3_SECRET_KEY_FILE")
STORE_BACKUP_S3_PREFIX = env("STORE_BACKUP_S3_PREFIX")
# Server-side encryption asked of the object storage: "" (none), AES256, aws:kms.
STORE_BACKUP_S3_SSE = env("STORE_BACKUP_S3_SSE")
if STORE_BACKUP_S3_SSE not in ("", "AES256", "aws:kms"):
    raise RuntimeError("STORE_BACKUP_S3_SSE must be empty, AES256 or aws:kms")
# When scheduled backups run (cron syntax, UTC), each store at its own offset
# within STORE_BACKUP_SPREAD_MINUTES so a thousand stores do not start at once.
STORE_BACKUP_SCHEDULE = env("STORE_BACKUP_SCHEDULE", "0 2 * * *")
STORE_BACKUP_SPREAD_MINUTES = env_int("STORE_BACKUP_SPREAD_MINUTES", 180)
# Good backups kept per store (pinned ones on top), and days a deleted
# store's backups are kept so it can be brought back.
STORE_BACKUP_KEEP = env_int("STORE_BACKUP_KEEP", 7)
STORE_BACKUP_KEEP_AFTER_DELETE = env_int("STORE_BACKUP_KEEP_AFTER_DELETE", 14)
# The image the stores' backup and restore Jobs run ("repository:tag"): the
# platform's own (its objectstore CLI and the database clients); "" keeps
# the engine charts' default. The platform chart sets it to its image.
STORE_BACKUP_IMAGE = env("STORE_BACKUP_IMAGE")
# Seconds a backup or restore Job may run.
STORE_BACKUP_TIMEOUT = env_int("STORE_BACKUP_TIMEOUT", 3600)
STORE_BACKUP_CHECK_INTERVAL = env_int("STORE_BACKUP_CHECK_INTERVAL", 300)
# The broker must outlive the longest backup too (see visibility_timeout above).
CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] = max(
    CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"], 2 * STORE_BACKUP_TIMEOUT + 900)
CELERY_IMPORTS += ["stores.backups"]
CELERY_BEAT_SCHEDULE["schedule-backups"] = {
    "task": "stores.backups.run_due", "schedule": float(STORE_BACKUP_CHECK_INTERVAL),
}
# --- end of backups and restores ---------------------------------------------

LOG_FORMAT = env("LOG_FORMAT", "text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "storeplatform.logging.JsonFormatter"},
    },
    "filters": {"context": {"()": "storeplatform.logging.ContextFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"],
        },
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "kubernetes": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}

# --- Security headers and cookies ---------------------------------------------
# Production (DJANGO_DEBUG=false) is served over HTTPS behind a proxy that sets
# X-Forwarded-Proto, and `manage.py check --deploy` is clean with these
# defaults; the dev stack (DEBUG on, plain http) gets none of the HTTPS-only
# ones. charts/platform sets the HTTPS ones from its config.scheme. Kubelet
# probes and Prometheus scrapes never reach this: ProbeMiddleware answers first.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", not DEBUG):
    # Trust X-Forwarded-Proto only behind a proxy that always sets it.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
# No script reads either cookie: htmx (base.html) and Swagger UI send the CSRF
# token rendered into the page.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SECURE_REFERRER_POLICY = env("DJANGO_REFERRER_POLICY", "same-origin")
# Sent by storeplatform.middleware.PermissionsPolicyMiddleware: the pages use
# none of these browser features.
PERMISSIONS_POLICY = env(
    "PERMISSIONS_POLICY",
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=()",
)
# Content-Security-Policy (django-csp): scripts and styles only from our own
# origin, no inline script and no eval. htmx runs with its inline indicator
# styles and eval switched off (templates/base.html, htmx-config). Inline
# style *attributes* stay allowed: DRF's browsable API uses them, and they
# cannot run code. DJANGO_CSP_REPORT_ONLY sends it as a report-only header.
_CSP = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF],
        "style-src": [csp.SELF],
        "style-src-attr": [csp.UNSAFE_INLINE],
        "img-src": [csp.SELF, "data:"],
        "font-src": [csp.SELF],
        "connect-src": [csp.SELF],
        "object-src": [csp.NONE],
        "base-uri": [csp.NONE],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    },
}
if env_bool("DJANGO_CSP_REPORT_ONLY", False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _CSP
else:
    CONTENT_SECURITY_POLICY = _CSP


# --- Security (issue 14): tokens, login throttling, keys, probes -------------
# API tokens are django-rest-knox tokens in our own model (name, last use):
# hashed at rest, a prefix kept for display, shown once, with an expiry.
INSTALLED_APPS += ["knox", "axes"]
KNOX_TOKEN_MODEL = "stores.ApiToken"
# knox's own migrations create its AuthToken table even when the model is
# swapped for ours: an orphan table (with a key to users) that Django's
# flush does not know. Without migrations, a swapped model gets no table.
MIGRATION_MODULES = {"knox": None}
# How long a token from POST /api/auth/token/ lives; the tokens page lets
# owners choose (up to API_TOKEN_MAX_DAYS).
API_TOKEN_TTL_HOURS = env_int("API_TOKEN_TTL_HOURS", 24)
API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 365)
REST_KNOX = {
    "TOKEN_MODEL": KNOX_TOKEN_MODEL,
    "TOKEN_TTL": timedelta(hours=API_TOKEN_TTL_HOURS),
    "AUTH_HEADER_PREFIX": "Token",  # clients keep sending "Authorization: Token <key>"
    "AUTO_REFRESH": False,
}
REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = [
    "stores.api.authentication.ApiTokenAuthentication",
    "rest_framework.authentication.SessionAuthentication",
]
# DRF's JSON parser lets a deeply nested body raise RecursionError (a 500).
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = ["stores.api.parsers.JSONParser"]
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] = [
    "drf_spectacular.hooks.postprocess_schema_enums",
    "stores.api.schema.refuse_unknown_fields",
]

# Sign-in throttling (django-axes) on /login/, /admin/login/ and
# /api/auth/token/: after LOGIN_FAILURE_LIMIT failures for one account, or
# from one address, sign-ins are refused with 429 for LOGIN_COOLOFF_SECONDS
# after the last counted failure. Failures during a lockout do not extend it,
# so nobody can keep an account locked without sending fresh failures
# after every cool-off.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
MIDDLEWARE.append("axes.middleware.AxesMiddleware")
# A NUL byte in a path or query is refused before any view asks PostgreSQL.
MIDDLEWARE.append("stores.middleware.NulByteMiddleware")
AXES_ENABLED = env_bool("LOGIN_THROTTLE_ENABLE", True)
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(seconds=env_int("LOGIN_COOLOFF_SECONDS", 900))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "stores.clientip.client_ip"
AXES_LOCKOUT_CALLABLE = "stores.lockout.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False  # no banner on every start of every management command

# Store credentials are encrypted with STORE_CREDENTIALS_KEY: comma-separated
# keys, newest first (the first encrypts, any decrypts; rotate with
# `manage.py reencrypt_credentials`). Required when DEBUG is off: a key of
# its own, so the Django secret key can rotate without touching it.
STORE_CREDENTIALS_KEYS = [
    key.strip() for key in env_secret("STORE_CREDENTIALS_KEY").split(",") if key.strip()
]
if not STORE_CREDENTIALS_KEYS:
    if not DEBUG:
        raise RuntimeError(
            "Set STORE_CREDENTIALS_KEY (or STORE_CREDENTIALS_KEY_FILE) when DEBUG is off: "
            "store credentials need a key of their own (see README, Configuration)"
        )
    STORE_CREDENTIALS_KEYS = [SECRET_KEY]

# /metrics without METRICS_TOKEN: open in development, refused in production
# unless METRICS_PUBLIC=true says it is fenced some other way.
METRICS_PUBLIC = env_bool("METRICS_PUBLIC", DEBUG)
# /readyz runs `helm version` at most this often per process.
READYZ_HELM_CACHE_SECONDS = env_int("READYZ_HELM_CACHE_SECONDS", 60)
