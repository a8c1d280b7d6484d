from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from accounts.models import Membership
from config.converters import as_pk

SESSION_ORG_KEY = "org_id"


class OrganizationMiddleware:
    """Sets `request.org` and `request.org_role` for signed-in browser requests.

    The selected org lives in the session (falling back to the user's last choice, then their
    personal org). Membership is checked on every request: a stale or foreign selection is dropped.
    API views resolve their org themselves (see accounts.permissions), since DRF authenticates later.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.org = None  # type: ignore[attr-defined]
        request.org_role = None  # type: ignore[attr-defined]
        user = request.user
        if user.is_authenticated and not request.path.startswith(("/static/", "/api/")):
            wanted = as_pk(request.session.get(SESSION_ORG_KEY)) or user.current_organization_id
            memberships = Membership.objects.select_related("organization").filter(user=user)
            membership = None
            if wanted:
                membership = memberships.filter(organization_id=wanted).first()
            if membership is None:
                membership = memberships.order_by("-organization__is_personal", "created_at").first()
            if membership is not None:
                request.org = membership.organization  # type: ignore[attr-defined]
                request.org_role = membership.role  # type: ignore[attr-defined]
                if request.session.get(SESSION_ORG_KEY) != membership.organization_id:
                    request.session[SESSION_ORG_KEY] = membership.organization_id
        return self.get_response(request)
