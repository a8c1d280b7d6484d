"""Settings: one module, read from the environment through small typed helpers.

With DATABASE_URL / REDIS_URL unset, the embedded PostgreSQL and Redis under `.data/` are used
(see config/embedded.py). There is no SQLite path and no production-only settings file.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

from config import embedded

os.environ.setdefault("AGNO_TELEMETRY", "false")

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


# ------------------------------------------------------------------ core

DEBUG = env_bool("DEBUG", True)
TESTING = env_bool("TESTING", False)
# The dev default is only ever used with DEBUG on; production must set SECRET_KEY.
SECRET_KEY = env_str("SECRET_KEY") or ("dev-insecure-" + "x" * 40 if DEBUG else "")
if not SECRET_KEY:
    raise RuntimeError("SECRET_KEY must be set when DEBUG is off")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django.contrib.humanize",
    "django.contrib.sites",
    # third party
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "channels",
    "django_celery_beat",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.github",
    "allauth.headless",
    "djstripe",
    # ours
    "accounts",
    "agents",
    "workflows",
    "knowledge",
    "billing",
    "community",
    "integrations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.BodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.OrganizationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"
SITE_ID = 1

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
                "accounts.context_processors.organization",
                "billing.context_processors.billing",
            ],
        },
    }
]

# ------------------------------------------------------------- database

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
else:
    _embedded_db: dict[str, object] = {
        **embedded.pg_settings(),
        "CONN_MAX_AGE": env_int("DB_CONN_MAX_AGE", 0 if TESTING else 60),
    }
    DATABASES = {"default": _embedded_db}  # type: ignore[dict-item]
# Django's PostgreSQL backend, plus statements that can travel with the COMMIT (config/postgres).
DATABASES["default"]["ENGINE"] = "config.postgres"
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A connection pool per process (psycopg_pool): under ASGI each request has a connection of its
# own (config/handlers.py reuses request threads, but Django keeps connections per request context),
# and a run worker has a thread per slot, so persistent connections were opened anew all the time and
# piled up past max_connections under load. Code that waits long (a run
# waiting for its model, the run endpoint waiting for its answer) hands its connection back first
# (config.db.release). Off in tests, whose transactions belong to one connection.
DB_POOL = env_bool("DB_POOL", not TESTING)
# Requests of one daphne process that run their sync code (middleware, view) at once; the rest wait
# on the event loop, which would otherwise be starved of the GIL under load (config/handlers.Gate).
# 0 turns the gate off.
ASGI_BUSY_THREADS = env_int("ASGI_BUSY_THREADS", 8)
# Long-running processes move their start-up heap out of the garbage collector's reach (config/heap.py).
GC_FREEZE = env_bool("GC_FREEZE", True)
if DB_POOL:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps connections; Django must not
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {  # type: ignore[index]
        "min_size": env_int("DB_POOL_MIN_SIZE", 2),
        "max_size": env_int("DB_POOL_MAX_SIZE", 40),
        "timeout": env_int("DB_POOL_TIMEOUT", 30),
    }
# The hot statements (config.prepared) are prepared on the server; off behind a pooler that cannot keep them.
DB_PREPARED_STATEMENTS = env_bool("DB_PREPARED_STATEMENTS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ----------------------------------------------------------------- redis

REDIS_URL = env_str("REDIS_URL") or embedded.redis_url()


def _celery_redis_url(url: str) -> str:
    # kombu spells a unix-socket Redis as <transport>+socket://; the transport is ours (config.broker),
    # named in the URL because kombu takes a URL's "+" prefix over CELERY_BROKER_TRANSPORT.
    from config.broker import ALIAS

    return f"{ALIAS}+socket://" + url.removeprefix("unix://") if url.startswith("unix://") else url


CACHES = {
    "default": {
        "BACKEND": "config.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "agentos",
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "config.channel_layer.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": "agentos:ch", "capacity": 1000, "expiry": 60},
    }
}

# ---------------------------------------------------------------- celery

CELERY_BROKER_URL = _celery_redis_url(REDIS_URL)
CELERY_BROKER_TRANSPORT = "config.broker:Transport"  # kombu's Redis transport, a client per channel
CELERY_RESULT_BACKEND = None  # results live in our own models; nothing reads Celery results
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "agents.tasks.*": {"queue": "runs"},
    "workflows.tasks.*": {"queue": "runs"},
    "knowledge.tasks.*": {"queue": "ingest"},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    # Expired step leases (crashed workers), due delays, approval timeouts, lost step messages.
    "workflows-sweep": {"task": "workflows.tasks.sweep", "schedule": env_int("WORKFLOW_SWEEP_SECONDS", 10)},
    # Billing: lapsed free credits, monthly allocations of paid plans, the nightly ledger check.
    "billing-expire-credits": {"task": "billing.tasks.expire_credits", "schedule": 3600},
    "billing-allocate-monthly": {"task": "billing.tasks.allocate_monthly", "schedule": 3600},
    "billing-reconcile": {"task": "billing.tasks.reconcile", "schedule": crontab(hour=3, minute=15)},
}
CELERY_TIMEZONE = "UTC"
# Celery's Django fixup closes every database connection before and after each task unless this is
# set, so each task paid for a new PostgreSQL backend (milliseconds). Connections are reused instead;
# config/celery.py applies CONN_MAX_AGE and the health check before each task, as Django does per request.
# With the pool, closing hands the connection back, so Celery may close after every task as it likes.
CELERY_DB_REUSE_MAX = None if DB_POOL else env_int("CELERY_DB_REUSE_MAX", 100_000)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# ------------------------------------------------------------------ auth

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast hashing in tests only

LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
ACCOUNT_LOGOUT_REDIRECT_URL = "landing"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env_str("ACCOUNT_EMAIL_VERIFICATION", "optional")
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_RATE_LIMITS = {
    "login": env_str("RATE_LIMIT_LOGIN", "30/m/ip"),
    "login_failed": env_str("RATE_LIMIT_LOGIN_FAILED", "10/m/ip,5/5m/key"),
    "signup": env_str("RATE_LIMIT_SIGNUP", "20/m/ip"),
    "reset_password": "20/m/ip,5/m/key",  # nosec B105 - a rate limit, not a password
}
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
GITHUB_CLIENT_ID = env_str("GITHUB_CLIENT_ID")
GITHUB_CLIENT_SECRET = env_str("GITHUB_CLIENT_SECRET")
GITHUB_LOGIN_ENABLED = bool(GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET)
SOCIALACCOUNT_PROVIDERS: dict = (
    {
        "github": {
            "APPS": [{"client_id": GITHUB_CLIENT_ID, "secret": GITHUB_CLIENT_SECRET, "key": ""}],
            "SCOPE": ["user:email"],
        }
    }
    if GITHUB_LOGIN_ENABLED
    else {}
)
HEADLESS_ONLY = False
HEADLESS_CLIENTS = ("app", "browser")
HEADLESS_FRONTEND_URLS = {
    "account_confirm_email": SITE_URL + "/accounts/confirm-email/{key}/",
    "account_reset_password_from_key": SITE_URL + "/accounts/password/reset/key/{key}/",
    "account_signup": SITE_URL + "/accounts/signup/",
}

# ----------------------------------------------------------------- email

EMAIL_URL = env_str("EMAIL_URL", "console:")
if EMAIL_URL.startswith("smtp"):
    from urllib.parse import unquote, urlparse

    _e = urlparse(EMAIL_URL)
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _e.hostname or "localhost"
    EMAIL_PORT = _e.port or 587
    EMAIL_HOST_USER = unquote(_e.username or "")
    EMAIL_HOST_PASSWORD = unquote(_e.password or "")
    EMAIL_USE_TLS = _e.scheme == "smtp+tls"
    EMAIL_USE_SSL = _e.scheme == "smtps"
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "AgentOS <noreply@agentos.local>")

# ------------------------------------------------------------------- api

API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 2 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
MAX_REQUEST_BODY_BYTES = env_int("MAX_REQUEST_BODY_BYTES", 25 * 1024 * 1024)  # file uploads included

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "accounts.authentication.SessionTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "config.throttling.AnonRateThrottle",  # DRF's, counted in Redis (config/throttling.py)
        "config.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("THROTTLE_ANON", "60/min"),
        "user": env_str("THROTTLE_USER", "1200/min"),
        "auth": env_str("THROTTLE_AUTH", "10/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AgentOS API",
    "DESCRIPTION": (
        "The AgentOS REST API (v1). Authenticate with `Authorization: Bearer <organization API key>`, "
        "an allauth headless app session (`X-Session-Token`), or the browser session with CSRF. "
        "For session and app tokens pick the organization with the `X-Organization` header. "
        'Errors always use the envelope `{"detail": ..., "error_code": ..., "field_errors": {...}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "accounts.models.Role",
        "KeyRoleEnum": ["admin", "member", "viewer"],
        "CheckoutKindEnum": ["pack", "subscription"],
        "PaymentRedirectKindEnum": ["checkout", "portal"],
    },
}

# ---------------------------------------------------------------- static

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
SERVE_STATIC = env_bool("SERVE_STATIC", True)
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(embedded.DATA_DIR / "media")))

AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
USE_S3 = bool(AWS_STORAGE_BUCKET_NAME)
STORAGES = {
    "default": (
        {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": AWS_STORAGE_BUCKET_NAME,
                "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
                "region_name": env_str("AWS_S3_REGION_NAME") or None,
                "default_acl": None,
                "querystring_auth": True,
            },
        }
        if USE_S3
        else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    ),
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# ---------------------------------------------------------------- i18n

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# -------------------------------------------------------------- security

SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_PROXY") else None
X_FRAME_OPTIONS = "DENY"

# Credentials at rest: a MultiFernet key ring, newest first. Rotate by prepending a key.
FERNET_KEYS = env_list("FERNET_KEYS", [])

# --------------------------------------------------------------- LLMs

OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL")

# ---------------------------------------------------------------- stripe

# Payments are optional: without STRIPE_SECRET_KEY the billing pages still show plans and usage and
# say that payments are not configured. Stripe posts webhooks to /api/v1/payments/webhook, signed with
# STRIPE_WEBHOOK_SECRET (endpoints created in the dj-stripe admin use /stripe/webhook/<uuid>/ instead).
SALES_EMAIL = env_str("SALES_EMAIL", "sales@agentos.local")  # "Contact us" for the Enterprise plan
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
STRIPE_LIVE_MODE = env_bool("STRIPE_LIVE_MODE", False)
STRIPE_CURRENCY = env_str("STRIPE_CURRENCY", "usd")
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"

# --------------------------------------------------------------- logging

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "stripe": {"level": "WARNING"},  # stripe-python logs every request at INFO
        "daphne": {"level": "WARNING"},
    },
}

# ------------------------------------------------------------ outbound http

# The safe client for user-configured URLs (integrations/safe_http.py). The allow-list holds host
# names or CIDRs exempt from the private-address block, e.g. "10.0.0.0/8,ollama.internal".
OUTBOUND_ALLOW_HOSTS = env_list("OUTBOUND_ALLOW_HOSTS", [])
OUTBOUND_TIMEOUT_SECONDS = env_int("OUTBOUND_TIMEOUT_SECONDS", 10)
OUTBOUND_MAX_RESPONSE_BYTES = env_int("OUTBOUND_MAX_RESPONSE_BYTES", 5 * 1024 * 1024)
OUTBOUND_MAX_REDIRECTS = env_int("OUTBOUND_MAX_REDIRECTS", 5)

# ------------------------------------------------------------ knowledge

# Uploads are refused with 413 over either cap; the org cap sums the sizes of its stored documents.
KNOWLEDGE_MAX_FILE_BYTES = env_int("KNOWLEDGE_MAX_FILE_BYTES", 25 * 1024 * 1024)
KNOWLEDGE_MAX_ORG_BYTES = env_int("KNOWLEDGE_MAX_ORG_BYTES", 1024 * 1024 * 1024)
KNOWLEDGE_MAX_PAGES = env_int("KNOWLEDGE_MAX_PAGES", 2000)
KNOWLEDGE_MAX_SHEET_ROWS = env_int("KNOWLEDGE_MAX_SHEET_ROWS", 10_000)
# Zip-bomb guards for Office files, checked from the archive's directory before anything is unpacked.
KNOWLEDGE_ZIP_MAX_UNCOMPRESSED_BYTES = env_int("KNOWLEDGE_ZIP_MAX_UNCOMPRESSED_BYTES", 200 * 1024 * 1024)
KNOWLEDGE_ZIP_MAX_RATIO = env_int("KNOWLEDGE_ZIP_MAX_RATIO", 100)
KNOWLEDGE_ZIP_MAX_MEMBERS = env_int("KNOWLEDGE_ZIP_MAX_MEMBERS", 10_000)
KNOWLEDGE_URL_TIMEOUT_SECONDS = env_int("KNOWLEDGE_URL_TIMEOUT_SECONDS", 30)
# A document left PROCESSING this long without progress (a crashed worker) may be claimed again.
KNOWLEDGE_INGEST_LEASE_SECONDS = env_int("KNOWLEDGE_INGEST_LEASE_SECONDS", 900)
# Embeddings calls and vector search (see knowledge/embeddings.py and knowledge/search.py).
EMBEDDING_BATCH_SIZE = env_int("EMBEDDING_BATCH_SIZE", 64)
EMBEDDING_RETRY_BACKOFF_SECONDS = float(env_str("EMBEDDING_RETRY_BACKOFF_SECONDS", "0.5"))
KNOWLEDGE_EXACT_SEARCH_MAX_ROWS = env_int("KNOWLEDGE_EXACT_SEARCH_MAX_ROWS", 20_000)
KNOWLEDGE_HNSW_EF_SEARCH = env_int("KNOWLEDGE_HNSW_EF_SEARCH", 100)
