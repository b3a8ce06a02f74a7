"""The one settings module. Every value comes from the environment (12-factor).

`make run` works with no variables at all: dev defaults, SQLite under var/, and a generated
dev secret. A process started with DEBUG off refuses insecure settings (see ops.checks).
Code never branches on WONDERTIX_ENV; it is a label for logs and metrics only.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import environ

SRC_DIR = Path(__file__).resolve().parent
# The project checkout (or the release directory when installed from a wheel: var/ is then
# given by WONDERTIX_VAR_DIR).
BASE_DIR = SRC_DIR.parent.parent

env = environ.Env()

VAR_DIR = Path(env.str("WONDERTIX_VAR_DIR", default=str(BASE_DIR / "var")))

WONDERTIX_ENV = env.str("WONDERTIX_ENV", default="dev")
DEBUG = env.bool("DEBUG", default=True)


def _dev_secret_key() -> str:
    """A per-checkout secret for local development, generated once, never committed."""
    path = VAR_DIR / "dev-secret-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", default="") or (_dev_secret_key() if DEBUG else "")
# Signs staff API tokens; a token minted by one environment is useless in another.
STAFF_API_TOKEN_KEY = env.str("STAFF_API_TOKEN_KEY", default="") or SECRET_KEY

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Source networks allowed to reach this environment (checked again in the app, behind HAProxy).
ALLOWED_SOURCE_NETWORKS = env.list("ALLOWED_SOURCE_NETWORKS", default=[])
# Proxies whose X-Forwarded-For we believe (HAProxy on loopback).
TRUSTED_PROXY_NETWORKS = env.list("TRUSTED_PROXY_NETWORKS", default=["127.0.0.0/8", "::1/128"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    # django-ninja's Swagger UI from our own static files (without it: a CDN the CSP blocks).
    "ninja",
    "wondertix.ops",
    "wondertix.catalog",
    "wondertix.patrons",
    "wondertix.sales",
    "wondertix.payments",
    "wondertix.boxoffice",
    "wondertix.storefront",
    "wondertix.reports",
    "wondertix.api",
]

MIDDLEWARE = [
    "wondertix.ops.middleware.RequestIdMiddleware",
    "wondertix.ops.middleware.SourceNetworkMiddleware",
    # Outside everything that touches the database (sessions, auth, the view), so a retry
    # runs all of it again; a no-op unless DATABASE_RIDE_THROUGH_S > 0 (ops.ridethrough).
    "wondertix.ops.ridethrough.DatabaseRideThroughMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
    "wondertix.ops.middleware.MetricsMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "wondertix.urls"
WSGI_APPLICATION = "wondertix.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [SRC_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "wondertix.ops.context.site",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'dev.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # BEGIN IMMEDIATE takes SQLite's write lock at the start of every transaction, so the
    # sale path's "lock, re-check, write" is serialized exactly as row locks do on PostgreSQL.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Seconds a request may wait for an unreachable database (a failover) before it is answered
# 503 + Retry-After; 0 = answer at once. The environment spec sets it (ops.ridethrough,
# docs/sale-path.md). While an outage is younger than this, /readyz still says ready.
DATABASE_RIDE_THROUGH_S = env.int("DATABASE_RIDE_THROUGH_S", default=0)
if DATABASE_RIDE_THROUGH_S > 0 and DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    # A connection attempt to an address that drops packets must fail in seconds, not
    # hang for the kernel's TCP timeout: every attempt spends the budget.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 3)
# An HA database (wtx sets it): /metrics reports its standbys and replication lag, read at most
# once per REPLICATION_METRICS_CACHE_S seconds per worker (ops/replication.py).
DATABASE_REPLICATION_METRICS = env.bool("DATABASE_REPLICATION_METRICS", default=False)
REPLICATION_METRICS_CACHE_S = env.float("REPLICATION_METRICS_CACHE_S", default=10.0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# The theater's zone: performance times are shown and entered in it.
TIME_ZONE = env.str("THEATER_TIME_ZONE", default="America/Los_Angeles")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
if DEBUG:
    # Dev serves static files through the finders; WhiteNoise still wants its root to exist.
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

LOGIN_URL = "/staff/login/"
LOGIN_REDIRECT_URL = "/staff/"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False

# Security headers; the environment spec turns HTTPS settings on where TLS terminates.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "style-src": ["'self'"],
        "script-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'", "https://checkout.stripe.com"],
    }
}

# Login throttling for staff (django-axes).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# Lock (username, real client address): behind HAProxy REMOTE_ADDR is always the proxy.
AXES_CLIENT_IP_CALLABLE = "wondertix.ops.middleware.client_of"
AXES_LOCKOUT_TEMPLATE = "boxoffice/locked_out.html"

# Sales.
HOLD_MINUTES = env.int("HOLD_MINUTES", default=15)
MAX_TICKETS_PER_ORDER = env.int("MAX_TICKETS_PER_ORDER", default=20)
# Per client address (sales.holdcaps): seats held at once, and holds made per minute; 0 = no cap.
# Generous enough for a family behind one home router, far below a house.
HOLD_SEATS_PER_CLIENT = env.int("HOLD_SEATS_PER_CLIENT", default=40)
HOLDS_PER_CLIENT_PER_MINUTE = env.int("HOLDS_PER_CLIENT_PER_MINUTE", default=20)
# Retry-After of the app's own "try again shortly" answers (database unreachable); wtx sets it
# to the front door's figure so HAProxy's busy page and the app's agree.
RETRY_AFTER_SECONDS = env.int("RETRY_AFTER_SECONDS", default=5)
CURRENCY = env.str("CURRENCY", default="USD")
# Test-only: skips the capacity lock so the concurrency tests can prove they catch a race.
# ops.checks refuses it whenever DEBUG is off.
WONDERTIX_UNSAFE_DISABLE_SALES_LOCK = env.bool("WONDERTIX_UNSAFE_DISABLE_SALES_LOCK", default=False)
# Test-only: a directory where the `test` provider's refunds wait on a gate file (see
# payments/providers/test.py), so a test can hold a refund inside the provider call.
# Ignored unless DEBUG is on, so it cannot be switched on where DEBUG is off (stg, prd).
WONDERTIX_TEST_PROVIDER_GATE = env.str("WONDERTIX_TEST_PROVIDER_GATE", default="") if DEBUG else ""

# Payments: "test" (in-process simulated card processor) or "stripe".
PAYMENT_PROVIDER = env.str("PAYMENT_PROVIDER", default="test")
# The environment's data is real (prd, bak): its orders are real tickets for real patrons. Such
# an environment never confirms an order paid with the simulated card ("test"): ops.checks
# refuses to start, /readyz answers 503 and the simulated provider declines every card, unless
# the spec declares a local demo in so many words (then every page, email and ticket says TEST).
DATA_IS_REAL = env.bool("DATA_IS_REAL", default=False)
SIMULATED_PAYMENTS_ON_REAL_DATA = env.bool("SIMULATED_PAYMENTS_ON_REAL_DATA", default=False)
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# Card readers at the window (Stripe Terminal): the readers registered to this Terminal location
# (tml_…) are offered at the point of sale; empty = every reader on the account.
STRIPE_TERMINAL_LOCATION = env.str("STRIPE_TERMINAL_LOCATION", default="")
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")
THEATER_NAME = env.str("THEATER_NAME", default="WonderTix Community Theater")
# Donation receipts name the organization as the tax authority knows it, with its tax id, and
# say what the law asks a receipt to say (the theater's accountant writes this wording).
THEATER_LEGAL_NAME = env.str("THEATER_LEGAL_NAME", default="") or THEATER_NAME
THEATER_TAX_ID = env.str("THEATER_TAX_ID", default="")
DONATION_TAX_STATEMENT = env.str(
    "DONATION_TAX_STATEMENT",
    default="No goods or services were provided in exchange for this gift. "
    "It may be tax-deductible to the extent allowed by law; please keep this receipt for your records.",
)
# Printed on every ticket (PDF) and in the calendar file: where the show is, and what a
# patron with a disability should know about getting in (step-free entrance, listening aids).
THEATER_VENUE = env.str("THEATER_VENUE", default="Main Stage")
THEATER_ADDRESS = env.str("THEATER_ADDRESS", default="")
THEATER_ACCESSIBILITY = env.str("THEATER_ACCESSIBILITY", default="")
# Ticket PDFs: the patron's pages ("letter" or "a4"), and the box office's ticket stock
# (width x height in inches, landscape; 8x3.25 is the common thermal ticket).
TICKET_PAGE_SIZE = env.str("TICKET_PAGE_SIZE", default="letter")
TICKET_STOCK_SIZE_IN = env.str("TICKET_STOCK_SIZE_IN", default="8x3.25")
# "Find my tickets": lookups per address and per client address in an hour (0 = no cap).
TICKET_LOOKUPS_PER_ADDRESS_PER_HOUR = env.int("TICKET_LOOKUPS_PER_ADDRESS_PER_HOUR", default=3)
TICKET_LOOKUPS_PER_CLIENT_PER_HOUR = env.int("TICKET_LOOKUPS_PER_CLIENT_PER_HOUR", default=20)
# Patron sign-in by emailed link: how long a link works, and requests per address and per
# client address in an hour (0 = no cap), as for "Find my tickets".
PATRON_SIGN_IN_LINK_MINUTES = env.int("PATRON_SIGN_IN_LINK_MINUTES", default=30)
PATRON_SIGN_INS_PER_ADDRESS_PER_HOUR = env.int("PATRON_SIGN_INS_PER_ADDRESS_PER_HOUR", default=3)
PATRON_SIGN_INS_PER_CLIENT_PER_HOUR = env.int("PATRON_SIGN_INS_PER_CLIENT_PER_HOUR", default=20)

# Email: console in dev; the environment spec sets EMAIL_BACKEND (file, smtp) elsewhere.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="box-office@wondertix.localhost")
# Emails go through the outbox (ops.outbox, docs/operations.md): one SMTP conversation may
# take at most EMAIL_TIMEOUT seconds; a failed send is retried with exponential backoff
# (OUTBOX_RETRY_BASE_S, doubling, at most OUTBOX_RETRY_MAX_S apart) up to OUTBOX_MAX_ATTEMPTS
# times, then shown as failed on the staff order page. OUTBOX_SEND_ON_COMMIT: also try each
# email right after its transaction commits (`wondertix run_jobs` sends whatever is left).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
OUTBOX_SEND_ON_COMMIT = env.bool("OUTBOX_SEND_ON_COMMIT", default=True)
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=8)
OUTBOX_RETRY_BASE_S = env.int("OUTBOX_RETRY_BASE_S", default=30)
OUTBOX_RETRY_MAX_S = env.int("OUTBOX_RETRY_MAX_S", default=3600)

# Logging: console lines in dev, JSON elsewhere; every line carries env and request id.
LOG_FORMAT = env.str("LOG_FORMAT", default="console")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FILE = env.str("LOG_FILE", default="")
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=True)

from wondertix.ops.logging import build_logging_config  # noqa: E402

LOGGING = build_logging_config(
    fmt=LOG_FORMAT, level=LOG_LEVEL, log_file=LOG_FILE, env_name=WONDERTIX_ENV
)
LOGGING_CONFIG = "logging.config.dictConfig"
