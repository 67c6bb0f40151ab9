"""Settings for the lms project, read from the environment only.

Production differs from development by environment variables alone; `.env.example` lists
them. With none set, the app runs as the demo: SQLite, one process, in-memory fan-out.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent


def env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    return value in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def missing(name: str) -> str:
    raise ImproperlyConfigured(
        f"The {name} environment variable is required when DEBUG is off. "
        f"Set it (for SECRET_KEY, 50 or more random characters), or set DEBUG=1 for development."
    )


DEBUG = env_flag("DEBUG")
DEV_SECRET_KEY = "django-insecure-development-only-key-never-use-in-production-0123456789"
SECRET_KEY = os.environ.get("SECRET_KEY") or (DEV_SECRET_KEY if DEBUG else missing("SECRET_KEY"))
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", default="localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_eventstream",
    "axes",
    "lms.accounts",
    "lms.courses",
    "lms.realtime",
    "lms.chat",
    "lms.livestream",
    "lms.qa",
    "lti_tool",
    "lms.lti",
]

MIDDLEWARE = [
    "lms.middleware.reject_nul_in_path",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "lms.accounts.middleware.UserTimezoneMiddleware",
    # Last, so that it sees the outcome of every login attempt.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "lms.urls"
ASGI_APPLICATION = "lms.asgi.application"
WSGI_APPLICATION = "lms.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "lms.chat.context_processors.notifications",
                "lms.chat.context_processors.unread",
            ],
        },
    },
]

# conn_max_age=0: under ASGI a long-lived request must not pin a database connection.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=0, conn_health_checks=False
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_flag("DATABASE_POOL", default=True):
    # A pool per process: a request borrows a connection for as long as it runs and gives it
    # back, instead of opening a new one (a few milliseconds) every time. Open event streams
    # borrow one only for their short checks. At most DATABASE_POOL_SIZE per process; with
    # none free, a request waits up to 10 s, then fails. Turn it off (DATABASE_POOL=0) behind
    # a pooler such as PgBouncer.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 0,
        "max_size": int(os.environ.get("DATABASE_POOL_SIZE", "10")),
        "max_idle": 120,
        "timeout": 10,
    }
# Django requests a worker process runs at once (the others wait their turn): each takes a
# thread and a database connection, so by default the pool's size less the 4 connections the
# real-time layer's own short database calls may hold.
REQUEST_CONCURRENCY = int(
    os.environ.get("REQUEST_CONCURRENCY", str(max(2, int(os.environ.get("DATABASE_POOL_SIZE", "10")) - 4)))
)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Many short writes from several threads: take the write lock when a transaction starts
    # (IMMEDIATE) and wait for it, instead of failing with "database is locked" mid-way.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # Axes first: it refuses a locked-out login before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Failed logins are throttled per username and address pair, so that guessing is slow but
# nobody can lock another person out from elsewhere, and the answer is the same whether or
# not the account exists.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Where the client's address comes from, as the platform in front requires (lms/clientip.py,
# docs/deployment.md): the login throttle and the rate limits count per address.
CLIENT_IP_SOURCE = os.environ.get("CLIENT_IP_SOURCE", "remote_addr").strip().lower()
if CLIENT_IP_SOURCE not in {"remote_addr", "x-forwarded-for", "fly-client-ip", "x-real-ip"}:
    raise ImproperlyConfigured(
        "CLIENT_IP_SOURCE must be remote_addr, x-forwarded-for, fly-client-ip or x-real-ip "
        f"(docs/deployment.md, Client addresses), not {CLIENT_IP_SOURCE!r}."
    )
PROXY_COUNT = max(1, int(os.environ.get("PROXY_COUNT", "1")))
AXES_CLIENT_IP_CALLABLE = "lms.clientip.client_ip"
AXES_VERBOSE = False

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
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
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
WHITENOISE_USE_FINDERS = DEBUG

# Bodies past this are refused with 400 before a view runs.
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024

# Redis: unset means one process with in-memory fan-out (the demo and development).
REDIS_URL = os.environ.get("REDIS_URL", "")
REALTIME_REDIS_PREFIX = os.environ.get("REALTIME_REDIS_PREFIX", "lms")

# django-eventstream: events are kept in the database so that a reconnecting page replays
# what it missed; lms.realtime does the serving, fan-out and Redis (see its package docs).
EVENTSTREAM_STORAGE_CLASS = "lms.realtime.storage.EventStorage"
EVENTSTREAM_CHANNELMANAGER_CLASS = "lms.realtime.channels.ChannelManager"
REALTIME_MAX_STREAMS_PER_USER = int(os.environ.get("REALTIME_MAX_STREAMS_PER_USER", "10"))
REALTIME_KEEPALIVE_SECONDS = float(os.environ.get("REALTIME_KEEPALIVE_SECONDS", "20"))
# An event stream closes after at most this long (less a random fifth) and the page
# reconnects where it left off, its session checked again.
REALTIME_STREAM_MAX_SECONDS = float(os.environ.get("REALTIME_STREAM_MAX_SECONDS", "3600"))
# How often each process checks storage for events that did not reach it live (0: default,
# every second without Redis, every 15 s with it).
REALTIME_POLL_SECONDS = float(os.environ.get("REALTIME_POLL_SECONDS", "0"))
# Pushpin (GRIP) in front of the app, for audiences past what Python workers should hold.
GRIP_URL = os.environ.get("GRIP_URL", "")

# Recordings uploaded through the app (files go through the storage API: see STORAGES).
RECORDING_MAX_BYTES = int(os.environ.get("RECORDING_MAX_BYTES", str(2 * 1024**3)))

# Request bodies past REQUEST_MAX_BYTES are refused with 413 before they are read (see
# lms/bodylimit.py); a recording upload may be as large as the recording and its form. The
# sample nginx configuration's client_max_body_size values match these defaults.
REQUEST_MAX_BYTES = int(os.environ.get("REQUEST_MAX_BYTES", str(1024**2)))
UPLOAD_MAX_BYTES = RECORDING_MAX_BYTES + 1024**2

# Flooding: at most this many messages per member per room in this many seconds.
CHAT_FLOOD_LIMIT = int(os.environ.get("CHAT_FLOOD_LIMIT", "10"))
CHAT_FLOOD_WINDOW = float(os.environ.get("CHAT_FLOOD_WINDOW", "10"))
# "Seen by N" under messages only in rooms of at most this many people (and direct
# conversations); never in a livestream's chat.
CHAT_RECEIPTS_MAX_MEMBERS = int(os.environ.get("CHAT_RECEIPTS_MAX_MEMBERS", "30"))


def env_rate(name: str, default: str) -> tuple[int, float]:
    """A rate limit from the environment: "20/60" is 20 per 60 seconds."""
    value = os.environ.get(name, "").strip() or default
    try:
        count, seconds = value.split("/")
        return int(count), float(seconds)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must look like 20/60 (20 per 60 seconds), not {value!r}.") from None


# Every write a person can repeat has a limit per person, generous for a person and tight for
# a script (see lms/ratelimit.py). Messages and questions count per room and per stream; the
# rest per person across the site. The page sends typing signals at most every 3 s.
RATE_LIMITS = {
    "post": (CHAT_FLOOD_LIMIT, CHAT_FLOOD_WINDOW),
    "edit": env_rate("RATE_LIMIT_EDIT", "20/60"),
    "delete": env_rate("RATE_LIMIT_DELETE", "30/60"),
    "typing": env_rate("RATE_LIMIT_TYPING", "40/60"),
    "direct": env_rate("RATE_LIMIT_DIRECT", "20/600"),
    "ask": env_rate("RATE_LIMIT_ASK", "10/60"),
    "question_vote": env_rate("RATE_LIMIT_QUESTION_VOTE", "60/60"),
    "poll_vote": env_rate("RATE_LIMIT_POLL_VOTE", "30/60"),
    # Per client address (CLIENT_IP_SOURCE): calendar apps fetch a feed about once an hour.
    "calendar": env_rate("RATE_LIMIT_CALENDAR", "60/600"),
}

# Jitsi Meet, embedded on stream pages. JaaS (8x8) or a self-hosted Jitsi with JWT is a
# setting away: set the app id, key id and private key and the server signs tokens.
JITSI_DOMAIN = os.environ.get("JITSI_DOMAIN", "meet.jit.si")
JAAS_APP_ID = os.environ.get("JAAS_APP_ID", "")
JAAS_KID = os.environ.get("JAAS_KID", "")
JAAS_PRIVATE_KEY = os.environ.get("JAAS_PRIVATE_KEY", "").replace("\\n", "\n")

# LTI 1.3: the origins of the registered platforms' pages (a Moodle site, a Canvas domain)
# that may show the app in their iframe; none: the app is never framed by another site.
LTI_FRAME_ANCESTORS = env_list("LTI_FRAME_ANCESTORS")

# Content Security Policy: our own origin, plus the Jitsi domain for its script and iframe.
_jitsi = f"https://{JITSI_DOMAIN}"
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, _jitsi],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "frame-src": [_jitsi],
    "media-src": [CSP.SELF, "https:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    # No page of ours is framed (as X_FRAME_OPTIONS says), but by the LTI platforms registered.
    "frame-ancestors": [*LTI_FRAME_ANCESTORS] or [CSP.NONE],
}

# One cache for every process when Redis is there: LTI logins keep their state and nonce in
# it between the login initiation and the launch, which may reach different workers.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": REALTIME_REDIS_PREFIX,
        }
    }

# Security headers; the HTTPS ones only when not in development.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_SSL_REDIRECT = env_flag("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_flag("SECURE_HSTS_PRELOAD")
    if LTI_FRAME_ANCESTORS:
        # Inside a platform's iframe our cookies are third-party: only SameSite=None (with
        # Secure) cookies are sent. Browsers that block them get pylti1p3's new-window page.
        SESSION_COOKIE_SAMESITE = "None"
        CSRF_COOKIE_SAMESITE = "None"
    # Preloading a domain into browsers is hard to undo: opt in with SECURE_HSTS_PRELOAD=1.
    SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# Without disable_existing_loggers=False, uvicorn's and gunicorn's own errors vanish.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}
