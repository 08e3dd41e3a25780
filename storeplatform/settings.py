"""Settings for storeplatform.

Every knob an operator may turn is an environment variable, read through the
small helpers below, with a default that lets a fresh checkout run without
any setup. The README lists each variable once.
"""

import os
from pathlib import Path

import dj_database_url

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
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_celery_results",
    "django_celery_beat",
    "stores",
    "provisioning",
]

MIDDLEWARE = [
    "storeplatform.middleware.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
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
# Credentials are encrypted at rest with a key derived from this secret.
STORE_CREDENTIALS_KEY = env_secret("STORE_CREDENTIALS_KEY") or SECRET_KEY

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
}
CELERY_IMPORTS = ["provisioning.housekeeping", "stores.fleet"]

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

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
