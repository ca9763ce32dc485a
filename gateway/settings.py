"""Settings for momo-gateway, read from the environment in this one place.

Every variable of the contract's configuration table is read here; nothing else in the
project touches ``os.environ``.
"""

from __future__ import annotations

import base64
import os
import tempfile
from decimal import Decimal
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from exc


def env_list(name: str) -> list[str]:
    """A comma-separated variable as a list: items stripped, empty ones dropped."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from exc


# --- Django core -------------------------------------------------------------------------

DEV_SECRET_KEY = "dev-insecure-momo-gateway-secret-key-change-me-in-production"  # noqa: S105
DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", DEV_SECRET_KEY)

ALLOWED_HOSTS = [h.strip() for h in env_str("ALLOWED_HOSTS", "").split(",") if h.strip()]
if DEBUG and not ALLOWED_HOSTS:
    ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_otp",
    "shell.apps.TwoFactorDevicesConfig",  # django_otp.plugins.otp_totp, headed for staff
    "gateway",
    # Django's admin with the gateway's site as its default (dashboard, two-factor sign-in);
    # after "gateway", so that gateway/templates/admin/base_site.html is the one used.
    "shell.admin_config.GatewayAdminConfig",
    "tenants",
    "payments",
    "mtn",
    "webhooks",
    "ledger",
    # On top of the apps: the worker, the admin site's dashboard and sign-in, the metrics scrape.
    "shell",
]

# `make bench` only: two baseline endpoints under /bench/ (never in a real deployment).
BENCH_ENDPOINTS = env_bool("BENCH_ENDPOINTS", False)
if BENCH_ENDPOINTS:
    INSTALLED_APPS.append("bench.baseline")

MIDDLEWARE = [
    "gateway.middleware.RequestIdMiddleware",
    "gateway.logging.AccessLogMiddleware",
    "gateway.middleware.ChunkedBodyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Marks a session that passed a one-time password (request.user.is_verified()); lazy,
    # so an API request never touches it.
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "gateway.middleware.ApiErrorMiddleware",
]

ROOT_URLCONF = "gateway.urls"
WSGI_APPLICATION = "gateway.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        # A persistent connection is checked before a request first uses it, and replaced
        # if PostgreSQL restarted or dropped it meanwhile: the request then succeeds instead
        # of failing on a dead connection (one "SELECT 1" per request that uses the database).
        conn_health_checks=env_bool("DB_CONN_HEALTH_CHECKS", True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database that does not answer fails a request within seconds (503) rather than
    # holding a gunicorn thread until its timeout.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env_int("DB_CONNECT_TIMEOUT", 5)
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite is the try-it-out default: wait on a busy database instead of failing at once,
    # and take the write lock at BEGIN so that concurrent writers queue instead of deadlocking.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Tests use a file, not Django's shared in-memory database: live-server tests then get a
    # connection per thread and real locking, as in production, instead of one shared
    # connection that concurrent threads trip over.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"momo-gateway-test-{os.getpid()}.sqlite3")
    }
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
# Redis holds only what can be rebuilt (rate-limit counters, MTN tokens): a request waits at
# most this long for it, then goes on without it (gateway/cache.py).
REDIS_TIMEOUT_SECONDS = env_float("REDIS_TIMEOUT_SECONDS", 0.25)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "gateway.cache.FailoverRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": REDIS_TIMEOUT_SECONDS,
                "SOCKET_TIMEOUT": REDIS_TIMEOUT_SECONDS,
            },
        }
    }
else:
    # The embedded default keeps rate-limit counters and tokens per process on purpose (one
    # process for trying it out); production sets REDIS_URL.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SILENCED_SYSTEM_CHECKS = [
    # django-ratelimit counts admin logins only (shell/admin_login.py): per process without
    # Redis on purpose, and FailoverRedisCache is django-redis's cache, which it supports.
    "django_ratelimit.E003",
    "django_ratelimit.W001",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# One time format in the admin: "2026-11-29 09:50:12 UTC" (gateway/formats/en/formats.py).
FORMAT_MODULE_PATH = ["gateway.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT") or BASE_DIR / "staticfiles")
# WhiteNoise serves the admin's and Swagger UI's files, compressed and with hashed names, from
# what `collectstatic` wrote (the image does it at build). With DEBUG on (development, tests)
# files come straight from the apps, so that no collectstatic is needed.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_AUTOREFRESH = DEBUG
WHITENOISE_USE_FINDERS = DEBUG

# Request bodies: a payment is a few hundred bytes; anything far larger is refused early.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 64 * 1024)

# --- Security (production) ----------------------------------------------------------------

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- REST framework and OpenAPI -----------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.authentication.IsTenantActive"],
    "DEFAULT_PARSER_CLASSES": ["gateway.parsers.StrictJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "gateway.parsers.JsonWhateverTheContentType",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "gateway.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["tenants.authentication.ApiKeyRateThrottle"],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "momo-gateway API",
    "DESCRIPTION": (
        "Collect money from MTN Mobile Money wallets, pay out to them and refund, through one "
        "REST API.\n\n"
        "**Authentication**: `Authorization: Bearer <API key>` alone (the key names its "
        "tenant), or the headers `X-API-Key` and `X-Tenant-ID` (your tenant's slug) together. "
        "**Creates** (payments, payouts, refunds) need an `Idempotency-Key`: retry with the "
        "same key and body after a timeout and you get the first answer again "
        "(`Idempotent-Replayed: true`), never a second payment. Every error is "
        '`{"error": {"code", "message", "fields"?}}`; unknown body fields and query '
        "parameters are refused with `400 validation_error`. Every response carries "
        "`X-Request-ID`.\n\n"
        "**Webhooks**: the gateway tells you when an object becomes final with a signed POST; "
        "see the *Webhooks* tag, the `WebhookEvent` component and `x-webhooks`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # One enum per concept, named for it (a generated client's types follow these names).
    "ENUM_NAME_OVERRIDES": {
        "Currency": "gateway.money.SUPPORTED_CURRENCIES",
        "Status": "payments.states.Status",
        "BalanceTransactionType": "ledger.api.serializers.STATEMENT_TYPE_VALUES",
        "SourceObject": "ledger.api.serializers.SOURCE_OBJECT_VALUES",
        "PayoutBatchStatus": "payments.models.PayoutBatch.State",
    },
    "ENUM_GENERATE_CHOICE_DESCRIPTION": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "gateway.openapi.merchant_document",
    ],
    "TAGS": [
        {"name": "Payments", "description": "Collect money from a payer's MoMo wallet."},
        {"name": "Payouts", "description": "Send money from your balance to a MoMo wallet."},
        {"name": "Refunds", "description": "Give a SUCCESSFUL payment back, wholly or in part."},
        {
            "name": "Payout batches",
            "description": "Pay many people in one request: payroll, commissions, suppliers.",
        },
        {"name": "Balances", "description": "What the gateway holds for you, and why."},
        {"name": "Payers", "description": "Whether a number is an active MoMo account."},
        {
            "name": "Webhooks",
            "description": (
                "Events the gateway POSTs to your webhook URL (not operations you call): "
                "see the `WebhookEvent` component and the document's `x-webhooks`."
            ),
        },
        {"name": "Health", "description": "For monitoring."},
    ],
}

# --- Gateway rules ------------------------------------------------------------------------

RATE_LIMIT_DEFAULT = env_str("RATE_LIMIT_DEFAULT", "120/m")
# Merchant webhook URLs on private or loopback addresses are refused (SSRF) unless allowed.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", DEBUG)
# Failed admin sign-ins per username from one client address (and one-time codes per user),
# and failed sign-ins per client address whatever the username. Only failures count, and
# only from where they happened: a right password from an address that has not failed is
# never refused, so no one can lock a staff member out from elsewhere.
ADMIN_LOGIN_RATE_LIMIT = env_str("ADMIN_LOGIN_RATE_LIMIT", "10/m")
ADMIN_LOGIN_ADDRESS_RATE_LIMIT = env_str("ADMIN_LOGIN_ADDRESS_RATE_LIMIT", "30/m")
# Proxies whose X-Forwarded-For names the client (gunicorn's own variable, same default; "*"
# trusts every peer). The admin's sign-in throttle counts per client address with it.
FORWARDED_ALLOW_IPS = env_list("FORWARDED_ALLOW_IPS") or ["127.0.0.1", "::1"]
# Staff pass a one-time password (TOTP) after their password to use the admin.
ADMIN_REQUIRE_2FA = env_bool("ADMIN_REQUIRE_2FA", not DEBUG)
# Whether a staff member with no TOTP device may enrol one in the admin right after the
# password. Off (production), someone holding only a password could otherwise enrol their
# own device first; an operator enrols staff with `manage.py staff_totp_enrol` instead.
ADMIN_ALLOW_WEB_ENROLMENT = env_bool("ADMIN_ALLOW_WEB_ENROLMENT", DEBUG)
OTP_TOTP_ISSUER = "momo-gateway"
# A TOTP secret is never shown again after enrolment: shell/admin.py replaces django-otp's
# device admin; this also hides the key should django-otp's own admin ever be used.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# MTN callbacks carry no API key: they are limited per client address instead.
CALLBACK_RATE_LIMIT = env_str("CALLBACK_RATE_LIMIT", "600/m")
PAYMENT_MAX_AMOUNT = Decimal(env_str("PAYMENT_MAX_AMOUNT", "1000000000"))
# A payout batch's body (JSON or CSV): 5,000 items with references and descriptions fit.
PAYOUT_BATCH_MAX_BODY_BYTES = env_int("PAYOUT_BATCH_MAX_BODY_BYTES", 4 * 1024 * 1024)
# Paths whose bodies may be larger than DATA_UPLOAD_MAX_MEMORY_SIZE (also when sent chunked).
BODY_LIMITS_BY_PATH = {"/api/v1/payout_batches": PAYOUT_BATCH_MAX_BODY_BYTES}
IDEMPOTENCY_KEY_TTL_SECONDS = env_int("IDEMPOTENCY_KEY_TTL_SECONDS", 24 * 3600)
# A key whose request died mid-way answers 409 for this long, then may be recovered.
IDEMPOTENCY_LOCK_TIMEOUT_SECONDS = env_int("IDEMPOTENCY_LOCK_TIMEOUT_SECONDS", 60)

# Fernet keys for secrets stored in the database; the first encrypts, every one decrypts.
DEV_FIELD_ENCRYPTION_KEY = "EsRrulKrYpkha1B4GRgtngdUyBNscGOhTIblvLsKqco="
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS") or [DEV_FIELD_ENCRYPTION_KEY]
# Payer look-ups (GET /api/v1/payers/{msisdn}) per API key, apart from RATE_LIMIT_DEFAULT.
PAYER_LOOKUP_RATE_LIMIT = env_str("PAYER_LOOKUP_RATE_LIMIT", "30/m")

# --- MTN MoMo -----------------------------------------------------------------------------

# The local simulator (manage.py mtn_sandbox) accepts exactly these credentials by default,
# so gateway and simulator agree with no setup. They are not secrets.
SIMULATOR_COLLECTION_API_USER = "1f2a3b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"
SIMULATOR_DISBURSEMENT_API_USER = "6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c9d"

MTN_BASE_URL = env_str("MTN_BASE_URL", "http://127.0.0.1:8001").rstrip("/")
MTN_TARGET_ENVIRONMENT = env_str("MTN_TARGET_ENVIRONMENT", "sandbox")
# The currencies the `default` account carries (e.g. EUR for MTN's sandbox); empty: any
# currency no other account claims. A create in a currency no account carries is 422.
MTN_CURRENCIES = tuple(sorted({code.upper() for code in env_list("MTN_CURRENCIES")}))
MTN_COLLECTION_SUBSCRIPTION_KEY = env_str(
    "MTN_COLLECTION_SUBSCRIPTION_KEY", "simulator-collection-subscription-key"
)
MTN_COLLECTION_API_USER = env_str("MTN_COLLECTION_API_USER", SIMULATOR_COLLECTION_API_USER)
MTN_COLLECTION_API_KEY = env_str("MTN_COLLECTION_API_KEY", "simulator-collection-api-key")
MTN_DISBURSEMENT_SUBSCRIPTION_KEY = env_str(
    "MTN_DISBURSEMENT_SUBSCRIPTION_KEY", "simulator-disbursement-subscription-key"
)
MTN_DISBURSEMENT_API_USER = env_str("MTN_DISBURSEMENT_API_USER", SIMULATOR_DISBURSEMENT_API_USER)
MTN_DISBURSEMENT_API_KEY = env_str("MTN_DISBURSEMENT_API_KEY", "simulator-disbursement-api-key")
MTN_CALLBACK_URL = env_str("MTN_CALLBACK_URL").rstrip("/")
DEV_MTN_WEBHOOK_SECRET = "dev-mtn-webhook-secret"  # noqa: S105 - the development value
MTN_WEBHOOK_SECRET = env_str("MTN_WEBHOOK_SECRET", DEV_MTN_WEBHOOK_SECRET)
MTN_VERIFY_CALLBACKS = env_bool("MTN_VERIFY_CALLBACKS", True)
MTN_STATUS_POLL_AFTER_SECONDS = env_int("MTN_STATUS_POLL_AFTER_SECONDS", 60)
# The UTC hour at which the worker runs `reconcile` for the previous day (When MTN disagrees).
RECONCILE_HOUR = env_int("RECONCILE_HOUR", 2)
if not 0 <= RECONCILE_HOUR <= 23:
    raise ImproperlyConfigured(
        f"RECONCILE_HOUR must be an hour from 0 to 23, not {RECONCILE_HOUR}."
    )
# Status calls per second that `reconcile` makes to one MTN account: a share of its limit,
# so that the day's live traffic keeps the rest.
RECONCILE_CALLS_PER_SECOND = env_float("RECONCILE_CALLS_PER_SECOND", 10.0)
# HTTP timeouts for every call to MTN (connect, read), in seconds.
MTN_CONNECT_TIMEOUT = env_float("MTN_CONNECT_TIMEOUT", 3.05)
MTN_READ_TIMEOUT = env_float("MTN_READ_TIMEOUT", 10.0)
# Retries inside one API request before the payment is left for the worker.
MTN_SUBMIT_MAX_TRIES = env_int("MTN_SUBMIT_MAX_TRIES", 3)
# The dispatcher in run_worker (shell/worker.py): threads that wait on MTN at once, and how
# often it looks for due work besides PostgreSQL's NOTIFY (SQLite has none: it polls).
DISPATCH_THREADS = env_int("DISPATCH_THREADS", 64)
DISPATCH_POLL_SECONDS = env_float(
    "DISPATCH_POLL_SECONDS", 0.1 if DATABASES["default"]["ENGINE"].endswith("sqlite3") else 0.5
)
# Requests that wait on MTN hold at most this many threads of a web process each (contract,
# Capacity): creates with Prefer: wait, payer look-ups, the admin's re-check.
PREFER_WAIT_SLOTS = env_int("PREFER_WAIT_SLOTS", 1)
PAYER_LOOKUP_SLOTS = env_int("PAYER_LOOKUP_SLOTS", 1)
ADMIN_RECHECK_SLOTS = env_int("ADMIN_RECHECK_SLOTS", 1)
MTN_SUBMIT_MAX_SECONDS = env_float("MTN_SUBMIT_MAX_SECONDS", 8.0)
# Per MTN account, over all processes (mtn.limits); an account row may set its own.
MTN_MAX_IN_FLIGHT = env_int("MTN_MAX_IN_FLIGHT", 32)
MTN_RATE_LIMIT = env_float("MTN_RATE_LIMIT", 50.0)
if MTN_MAX_IN_FLIGHT < 1:
    raise ImproperlyConfigured(f"MTN_MAX_IN_FLIGHT must be at least 1, not {MTN_MAX_IN_FLIGHT}")
if not MTN_RATE_LIMIT > 0:  # also refuses NaN
    raise ImproperlyConfigured(f"MTN_RATE_LIMIT must be a positive number, not {MTN_RATE_LIMIT}")

# --- Refusing to start on development secrets ---------------------------------------------


def _fernet_key_problem(key: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(key.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != 32:
        return "is not a Fernet key (32 bytes, url-safe base64: Fernet.generate_key())"
    return None


for _index, _key in enumerate(env_list("FIELD_ENCRYPTION_KEYS"), start=1):
    if _problem := _fernet_key_problem(_key):
        raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS: key {_index} {_problem}.")

# Each variable that must hold a real secret with DEBUG off, and its development value.
_PRODUCTION_SECRETS = {
    "SECRET_KEY": DEV_SECRET_KEY,
    "MTN_COLLECTION_SUBSCRIPTION_KEY": "simulator-collection-subscription-key",
    "MTN_COLLECTION_API_USER": SIMULATOR_COLLECTION_API_USER,
    "MTN_COLLECTION_API_KEY": "simulator-collection-api-key",
    "MTN_DISBURSEMENT_SUBSCRIPTION_KEY": "simulator-disbursement-subscription-key",
    "MTN_DISBURSEMENT_API_USER": SIMULATOR_DISBURSEMENT_API_USER,
    "MTN_DISBURSEMENT_API_KEY": "simulator-disbursement-api-key",
    "MTN_WEBHOOK_SECRET": DEV_MTN_WEBHOOK_SECRET,
}


def _development_secrets() -> list[str]:
    """What makes these settings unsafe for production: one line per variable."""
    problems = []
    for name, development_value in _PRODUCTION_SECRETS.items():
        value = env_str(name).strip()
        if not value:
            problems.append(f"{name} is not set")
        elif value == development_value:
            problems.append(f"{name} is the built-in development value")
    keys = env_list("FIELD_ENCRYPTION_KEYS")
    if not keys:
        problems.append("FIELD_ENCRYPTION_KEYS is not set")
    elif DEV_FIELD_ENCRYPTION_KEY in keys:
        problems.append("FIELD_ENCRYPTION_KEYS holds the built-in development key")
    return problems


# Every process reads these settings first (manage.py commands, gunicorn's workers), so none
# of them starts on a secret that is in this file for all to read.
if not DEBUG and (_unsafe := _development_secrets()):
    raise ImproperlyConfigured(
        "Refusing to start with DEBUG off: "
        + "; ".join(_unsafe)
        + ". Set each to its production value (docs/operations.md, 'First deployment'), "
        "or DEBUG=true for development."
    )

# --- Logging ------------------------------------------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
# json: one JSON object per line (gateway/logging.py); plain: for a person at a terminal.
LOG_FORMAT = env_str("LOG_FORMAT", "plain" if DEBUG else "json").strip().lower()
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # On the handler, so that everything printed is masked, whatever logger it came from.
    "filters": {
        "redact": {"()": "gateway.logging.RedactingFilter"},
        # runserver's own per-request line ("GET /x HTTP/1.1" 404 58) repeats the access log.
        "no_request_lines": {
            "()": "django.utils.log.CallbackFilter",
            "callback": lambda record: not hasattr(record, "status_code"),
        },
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "gateway.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["redact"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own handlers print unmasked: send its lines (django.request's 4xx/5xx
        # warnings included) through ours instead.
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        # One line per request: gateway.access. django.request's "Not Found: /x" warning for
        # every 4xx would repeat it; its errors (5xx, with the traceback) are kept.
        "django.request": {"handlers": [], "level": "ERROR", "propagate": True},
        # Named here so that Django's default handler for it (unmasked, propagate off) is
        # replaced; its per-request lines are dropped, anything else it says is kept.
        "django.server": {"handlers": [], "filters": ["no_request_lines"], "propagate": True},
        "django.db.backends": {"level": "WARNING"},
    },
}

# --- Metrics (gateway/metrics.py) ---------------------------------------------------------

# /metrics needs "Authorization: Bearer <METRICS_TOKEN>"; unset, /metrics is 404 unless DEBUG.
METRICS_TOKEN = env_str("METRICS_TOKEN")
# Several gunicorn workers: a per-host empty directory where they share their counters.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR")
# run_worker serves its own metrics on this port (0: off).
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0)
WORKER_METRICS_ADDR = env_str("WORKER_METRICS_ADDR", "0.0.0.0")  # noqa: S104 - in a container
