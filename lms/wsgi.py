"""WSGI entry point, for management tools only: the app is served over ASGI (see asgi.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lms.settings")

application = get_wsgi_application()
