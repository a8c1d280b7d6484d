"""ASGI entry point: HTTP through Django, websockets through Channels (origin-checked, session auth)."""

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("AGNO_TELEMETRY", "false")

import django  # noqa: E402
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

django.setup(set_prefix=False)  # what django.core.asgi.get_asgi_application() does first

from config.handlers import ASGIHandler  # noqa: E402

django_asgi_app: Any = ASGIHandler()  # Django's, with one thread hop per request (config/handlers.py)
if settings.SERVE_STATIC:
    # daphne serves /static/ itself unless a CDN or proxy does (SERVE_STATIC=false).
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    django_asgi_app = ASGIStaticFilesHandler(django_asgi_app)

from config.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

from config.heap import settle  # noqa: E402

settle()
