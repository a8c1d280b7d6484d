"""Resolving the current organization for API requests, and the DRF permission classes that gate by role.

- API key: the key's organization and role. An `X-Organization` header naming another org is a 404.
- Session / app token: the `X-Organization` header (id or slug), else the user's current org.
  Membership is checked every time; an unknown or foreign org is a 404.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from accounts.models import ApiKey, Membership, Organization, Role, role_at_least
from config.converters import as_pk


@dataclass(frozen=True)
class OrgContext:
    org: Organization
    role: str
    api_key: ApiKey | None = None

    def member_role(self, user: object) -> str | None:
        """The user's role in this organization (None: not a member). For an API key's creator it
        was read with the key, in the same query."""
        key = self.api_key
        if (
            key is not None
            and getattr(user, "pk", None) == key.created_by_id
            and hasattr(key, "creator_role")
        ):
            return key.creator_role  # type: ignore[no-any-return]
        return self.org.role_of(user)  # type: ignore[arg-type]


def _lookup_header_org(value: str) -> dict[str, object]:
    pk = as_pk(value)
    return {"organization_id": pk} if pk is not None else {"organization__slug": value[:140]}


def resolve_api_org(request: Request) -> OrgContext:
    cached = getattr(request, "_org_context", None)
    if cached is not None:
        return cached
    header = (request.headers.get("X-Organization") or "").strip()
    ctx: OrgContext
    if isinstance(request.auth, ApiKey):
        key = request.auth
        if header and header not in (str(key.organization_id), key.organization.slug):
            raise Http404("Unknown organization.")
        ctx = OrgContext(org=key.organization, role=key.role, api_key=key)
    else:
        user = request.user
        if not user.is_authenticated:
            raise Http404("Unknown organization.")
        memberships = Membership.objects.select_related("organization").filter(user=user)
        if header:
            membership = memberships.filter(**_lookup_header_org(header)).first()
        else:
            membership = (
                memberships.filter(organization_id=user.current_organization_id or 0).first()
                or memberships.order_by("-organization__is_personal", "created_at").first()
            )
        if membership is None:
            raise Http404("Unknown organization.")
        ctx = OrgContext(org=membership.organization, role=membership.role)
    request._org_context = ctx  # type: ignore[attr-defined]
    return ctx


def resolve_path_org(request: Request, org_id: int | str) -> OrgContext:
    """The organization named in the URL, checked the same way as the header."""
    if isinstance(request.auth, ApiKey):
        key = request.auth
        if key.organization_id != as_pk(org_id):
            raise Http404("Unknown organization.")
        return OrgContext(org=key.organization, role=key.role, api_key=key)
    user = request.user
    pk = as_pk(org_id) or 0
    membership = (
        Membership.objects.select_related("organization").filter(user=user, organization_id=pk).first()
        if user.is_authenticated and as_pk(org_id) is not None
        else None
    )
    if membership is None:
        raise Http404("Unknown organization.")
    return OrgContext(org=membership.organization, role=membership.role)


class OrgRolePermission(BasePermission):
    """Reads need any membership; writes need `write_role` (member by default).

    Views may set `required_role` to demand more for writes, e.g. admin for org settings.
    """

    message = "Your role in this organization does not allow this."
    read_role = Role.VIEWER
    write_role = Role.MEMBER

    def has_permission(self, request: Request, view: object) -> bool:
        ctx = getattr(view, "org_context", None)
        if ctx is None:
            ctx = resolve_api_org(request)
        minimum = (
            self.read_role
            if request.method in SAFE_METHODS
            else getattr(view, "required_role", self.write_role)
        )
        return role_at_least(ctx.role, minimum)


class IsOrgMember(OrgRolePermission):
    pass
