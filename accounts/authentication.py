"""DRF authentication: org API keys (Bearer), allauth headless session tokens, and the browser session."""

from __future__ import annotations

from allauth.headless.contrib.rest_framework.authentication import XSessionTokenAuthentication
from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import ApiKey
from accounts.services import api_key_authenticate


class ApiKeyPrincipal(AnonymousUser):
    """Stands in for the user when a key's creator no longer exists; the key itself carries org and role."""

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[object, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1").strip()
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        raw = raw.strip()
        if not raw or " " in raw:
            raise exceptions.AuthenticationFailed("Malformed API key.", code="invalid_api_key")
        key = api_key_authenticate(raw=raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.", code="invalid_api_key")
        return (key.created_by or ApiKeyPrincipal(), key)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class SessionTokenAuthentication(XSessionTokenAuthentication):
    """allauth headless app sessions: `X-Session-Token`. A token that is sent but invalid is a 401."""

    def authenticate(self, request: Request):  # type: ignore[override]
        token = self.get_session_token(request)
        if not token:
            return None
        result = super().authenticate(request)
        if result is None:
            raise exceptions.AuthenticationFailed(
                "Invalid or expired session token.", code="invalid_session_token"
            )
        return result
