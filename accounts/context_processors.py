from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from accounts.models import Organization, Role, role_at_least


def organization(request: HttpRequest) -> dict[str, object]:
    org = getattr(request, "org", None)
    role = getattr(request, "org_role", None)
    user = getattr(request, "user", None)
    orgs = (
        Organization.objects.for_user(user).order_by("-is_personal", "name")
        if user is not None and user.is_authenticated
        else []
    )
    return {
        "current_org": org,
        "current_role": role,
        "user_orgs": orgs,
        "can_admin_org": bool(role and role_at_least(role, Role.ADMIN)),
        "can_write_org": bool(role and role_at_least(role, Role.MEMBER)),
        "github_login_enabled": settings.GITHUB_LOGIN_ENABLED,
    }
