from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from accounts.models import Role, role_at_least


def org_role_required(
    minimum: str = Role.VIEWER,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """HTML views: require a signed-in member of the current org with at least `minimum` role."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            role = getattr(request, "org_role", None)
            if getattr(request, "org", None) is None or role is None:
                raise Http404("No organization selected.")
            if not role_at_least(role, minimum):
                raise PermissionDenied("Your role in this organization does not allow this.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
