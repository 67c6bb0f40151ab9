"""Test settings: environment defaults first, then the real settings module."""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-for-the-test-suite-only-0123456789-abcdefghij")
os.environ.setdefault("DEBUG", "")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("REALTIME_POLL_SECONDS", "0.2")
os.environ.setdefault("REALTIME_KEEPALIVE_SECONDS", "2")
# One Redis prefix per test run, shared with the server processes the run starts.
os.environ.setdefault("REALTIME_REDIS_PREFIX", f"lms-test-{os.getpid()}")

from lms.settings import *  # noqa: E402,F403
from lms.settings import BASE_DIR, DATABASES, STORAGES  # noqa: E402

# Test servers run in their own processes: the SQLite test database is a file they can open.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f".test-db-{os.getpid()}.sqlite3")}

STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
# Test servers speak plain HTTP, where browsers drop SameSite=None cookies (those need Secure);
# the simulated LTI platform and the app are both on 127.0.0.1, the same site.
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
