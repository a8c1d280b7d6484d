"""Account and organization services: keyword-only, typed, named <entity>_<action>."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import (
    ROLE_RANK,
    ApiKey,
    AuditLog,
    Invitation,
    Membership,
    Organization,
    Role,
    User,
    hash_api_key,
    role_at_least,
)
from config.prepared import Prepared

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """A business rule refused the action. `code` is machine-readable, the message is for people."""

    def __init__(self, message: str, *, code: str = "invalid", status: int = 400):
        super().__init__(message)
        self.code = code
        self.status = status


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_log_record(
    *,
    action: str,
    actor: User | None = None,
    organization: Organization | None = None,
    target: Any = None,
    request: HttpRequest | None = None,
    **metadata: Any,
) -> AuditLog:
    """The one way to write to the audit log."""
    return AuditLog.objects.create(
        action=action,
        actor=actor if actor is not None and actor.is_authenticated else None,
        organization=organization,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        ip_address=client_ip(request),
        metadata=metadata,
    )


# ---------------------------------------------------------------- orgs


@transaction.atomic
def organization_create(*, name: str, owner: User, is_personal: bool = False) -> Organization:
    org = Organization.objects.create(
        name=name.strip(), slug=Organization.unique_slug(name), is_personal=is_personal, created_by=owner
    )
    Membership.objects.create(organization=org, user=owner, role=Role.OWNER)
    if owner.current_organization_id is None:
        owner.current_organization = org
        owner.save(update_fields=["current_organization"])
    audit_log_record(action="organization.created", actor=owner, organization=org, target=org)
    return org


def user_ensure_personal_org(*, user: User) -> Organization:
    """Every user has a personal organization; created at sign-up, repaired here if missing."""
    org = Organization.objects.filter(is_personal=True, created_by=user, memberships__user=user).first()
    if org is None:
        org = organization_create(name=f"{user.display_name}'s workspace", owner=user, is_personal=True)
    return org


def organization_switch(*, user: User, org: Organization) -> None:
    if not Membership.objects.filter(user=user, organization=org).exists():
        raise ServiceError("You are not a member of that organization.", code="not_found", status=404)
    user.current_organization = org
    user.save(update_fields=["current_organization"])


def organization_update(*, org: Organization, by: User, name: str) -> Organization:
    org.name = name.strip()
    org.save(update_fields=["name", "updated_at"])
    audit_log_record(action="organization.updated", actor=by, organization=org, target=org, name=org.name)
    return org


# ------------------------------------------------------------- members


def _require_role(org: Organization, user: User, minimum: str, as_role: str | None = None) -> str:
    """The acting role: the user's membership role, capped by `as_role` when acting through an API key,
    so a key never has more rights than either itself or its creator."""
    role = org.role_of(user)
    if role is None:
        raise ServiceError("Not found.", code="not_found", status=404)
    if as_role is not None and ROLE_RANK[Role(as_role)] < ROLE_RANK[Role(role)]:
        role = as_role
    if not role_at_least(role, minimum):
        raise ServiceError("Your role does not allow this.", code="permission_denied", status=403)
    return role


@transaction.atomic
def membership_change_role(
    *,
    membership: Membership,
    role: str,
    by: User,
    request: HttpRequest | None = None,
    as_role: str | None = None,
) -> Membership:
    org = membership.organization
    by_role = _require_role(org, by, Role.ADMIN, as_role=as_role)
    if role not in Role.values:
        raise ServiceError(f"“{role}” is not a role.", code="invalid_role")
    # Only owners may create owners or touch another owner.
    if (role == Role.OWNER or membership.role == Role.OWNER) and by_role != Role.OWNER:
        raise ServiceError(
            "Only an owner can grant or change the owner role.", code="permission_denied", status=403
        )
    if membership.role == Role.OWNER and role != Role.OWNER and org.owner_count() <= 1:
        raise ServiceError("An organization needs at least one owner.", code="last_owner", status=409)
    old = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    audit_log_record(
        action="member.role_changed",
        actor=by,
        organization=org,
        target=membership.user,
        request=request,
        old_role=old,
        new_role=role,
    )
    return membership


@transaction.atomic
def membership_remove(
    *, membership: Membership, by: User, request: HttpRequest | None = None, as_role: str | None = None
) -> None:
    org = membership.organization
    leaving_self = membership.user_id == by.pk and as_role is None  # a key never 'leaves'
    by_role = _require_role(org, by, Role.VIEWER if leaving_self else Role.ADMIN, as_role=as_role)
    if membership.role == Role.OWNER and not leaving_self and by_role != Role.OWNER:
        raise ServiceError("Only an owner can remove an owner.", code="permission_denied", status=403)
    if membership.role == Role.OWNER and org.owner_count() <= 1:
        raise ServiceError("An organization needs at least one owner.", code="last_owner", status=409)
    user = membership.user
    membership.delete()
    if user.current_organization_id == org.pk:
        user.current_organization = None
        user.save(update_fields=["current_organization"])
    audit_log_record(action="member.removed", actor=by, organization=org, target=user, request=request)


# ---------------------------------------------------------- invitations


def invitation_create(
    *,
    org: Organization,
    email: str,
    role: str,
    by: User,
    request: HttpRequest | None = None,
    as_role: str | None = None,
) -> Invitation:
    by_role = _require_role(org, by, Role.ADMIN, as_role=as_role)
    email = email.strip().lower()
    if role == Role.OWNER and by_role != Role.OWNER:
        raise ServiceError("Only an owner can invite owners.", code="permission_denied", status=403)
    if org.memberships.filter(user__email__iexact=email).exists():
        raise ServiceError(f"{email} is already a member.", code="already_member", status=409)
    if Invitation.objects.for_org(org).pending().filter(email__iexact=email).exists():
        raise ServiceError(f"{email} already has a pending invitation.", code="already_invited", status=409)
    invitation = Invitation.objects.create(organization=org, email=email, role=role, invited_by=by)
    from accounts.tasks import send_invitation_email

    transaction.on_commit(lambda: send_invitation_email.delay(invitation.pk))
    audit_log_record(
        action="invitation.created",
        actor=by,
        organization=org,
        target=invitation,
        request=request,
        email=email,
    )
    return invitation


def invitation_accept_url(invitation: Invitation) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("invitation_accept", args=[invitation.token])


def invitation_send(*, invitation_id: int) -> None:
    invitation = (
        Invitation.objects.select_related("organization", "invited_by").filter(pk=invitation_id).first()
    )
    if invitation is None or invitation.status != "pending":
        return
    context = {"invitation": invitation, "url": invitation_accept_url(invitation)}
    send_mail(
        subject=f"You're invited to {invitation.organization.name} on AgentOS",
        message=render_to_string("accounts/email/invitation.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )


@transaction.atomic
def invitation_accept(
    *, invitation: Invitation, user: User, request: HttpRequest | None = None
) -> Membership:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.status != "pending":
        raise ServiceError(
            f"This invitation is {invitation.status}.", code=f"invitation_{invitation.status}", status=410
        )
    if invitation.email.lower() != user.email.lower():
        raise ServiceError(
            f"This invitation was sent to {invitation.email}. Sign in with that address to accept it.",
            code="invitation_email_mismatch",
            status=403,
        )
    membership, created = Membership.objects.get_or_create(
        organization=invitation.organization, user=user, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    user.current_organization = invitation.organization
    user.save(update_fields=["current_organization"])
    audit_log_record(
        action="invitation.accepted",
        actor=user,
        organization=invitation.organization,
        target=invitation,
        request=request,
        role=membership.role,
    )
    return membership


def invitation_revoke(
    *, invitation: Invitation, by: User, request: HttpRequest | None = None, as_role: str | None = None
) -> Invitation:
    _require_role(invitation.organization, by, Role.ADMIN, as_role=as_role)
    if invitation.status != "pending":
        raise ServiceError(
            f"This invitation is already {invitation.status}.", code="invitation_not_pending", status=409
        )
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_log_record(
        action="invitation.revoked",
        actor=by,
        organization=invitation.organization,
        target=invitation,
        request=request,
    )
    return invitation


# ------------------------------------------------------------- api keys


def api_key_create(
    *,
    org: Organization,
    name: str,
    by: User,
    role: str = Role.MEMBER,
    request: HttpRequest | None = None,
    as_role: str | None = None,
) -> tuple[ApiKey, str]:
    """Returns the key and its raw value. The raw value is never stored and never shown again."""
    by_role = _require_role(org, by, Role.ADMIN, as_role=as_role)
    if not role_at_least(by_role, role):
        raise ServiceError(
            "You cannot create a key with more rights than your own.", code="permission_denied", status=403
        )
    from billing import limits

    prefix, raw = ApiKey.generate()
    with transaction.atomic():
        limits.check(org, "api_keys")  # held until the key is committed: two requests can't both fit
        key = ApiKey.objects.create(
            organization=org,
            name=name.strip(),
            prefix=prefix,
            key_hash=hash_api_key(raw),
            role=role,
            created_by=by,
        )
    audit_log_record(
        action="api_key.created", actor=by, organization=org, target=key, request=request, prefix=prefix
    )
    return key, raw


def api_key_revoke(
    *, key: ApiKey, by: User, request: HttpRequest | None = None, as_role: str | None = None
) -> ApiKey:
    _require_role(key.organization, by, Role.ADMIN, as_role=as_role)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_log_record(
            action="api_key.revoked",
            actor=by,
            organization=key.organization,
            target=key,
            request=request,
            prefix=key.prefix,
        )
    return key


def _keys_by_prefix(prefix: str) -> Any:
    from django.db.models import OuterRef, Subquery

    # The creator's current role comes with the key: requests acting as the creator need no second query.
    creator_role = Membership.objects.filter(
        organization_id=OuterRef("organization_id"), user_id=OuterRef("created_by_id")
    ).values("role")[:1]
    return (
        ApiKey.objects.select_related("organization", "created_by")
        .annotate(creator_role=Subquery(creator_role))
        .filter(prefix=prefix)
    )


_KEY_BY_PREFIX = Prepared(_keys_by_prefix, str)  # every API request: compiled once


def api_key_authenticate(*, raw: str) -> ApiKey | None:
    """Find the active key for a raw value, comparing hashes in constant time."""
    import hmac

    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != "aos" or not parts[1] or not parts[2]:
        return None
    key = _KEY_BY_PREFIX.first(parts[1])
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.key_hash, hash_api_key(raw)):
        return None
    key.touch()
    return key
