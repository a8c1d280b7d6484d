"""Request types for views behind our decorators, so type checkers know what the middleware set."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from django_htmx.middleware import HtmxDetails

    from accounts.models import Organization, User


class AuthedHttpRequest(HttpRequest):
    user: User  # type: ignore[assignment]
    org: Organization
    org_role: str
    htmx: HtmxDetails
