"""Settings of the co-op Django stand-in: everything a deploy changes comes from the environment.

DATABASE_URL (postgres://USER:PASSWORD@HOST:PORT/NAME) selects PostgreSQL; without it the
database is SQLite on the co-op's data volume (/data/db.sqlite3).
"""
import os
from urllib.parse import unquote, urlparse

SECRET_KEY = os.environ.get("SECRET_KEY", "coop-django-stand-in-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "coopsite.urls"
WSGI_APPLICATION = "coopsite.wsgi.application"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "coopsite.site",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]


def _database(url):
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(os.environ.get("DATA_DIR", "/data"), "db.sqlite3"),
        }
    u = urlparse(url)
    if u.scheme not in ("postgres", "postgresql"):
        raise ValueError("DATABASE_URL must be postgres://...")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": u.path.lstrip("/"),
        "USER": unquote(u.username or ""),
        "PASSWORD": unquote(u.password or ""),
        "HOST": u.hostname or "",
        "PORT": str(u.port or ""),
        "CONN_MAX_AGE": 60,
    }


DATABASES = {"default": _database(os.environ.get("DATABASE_URL"))}

LOGGING = {
    "version": 1,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
