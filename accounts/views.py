from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts import services
from accounts.decorators import org_role_required
from accounts.forms import ApiKeyForm, InvitationForm, OrganizationForm, RoleForm
from accounts.middleware import SESSION_ORG_KEY
from accounts.models import ApiKey, AuditLog, Invitation, Membership, Organization, Role
from accounts.tenancy import get_for_org_or_404
from accounts.types import AuthedHttpRequest
from config.converters import as_pk


def landing(request: HttpRequest) -> TemplateResponse:
    return TemplateResponse(request, "accounts/landing.html", {"featured_agents": []})


@org_role_required(Role.VIEWER)
def dashboard(request: AuthedHttpRequest) -> TemplateResponse:
    from django.db.models import F, Q

    from agents.models import Agent

    org = request.org
    agents = (
        Agent.objects.for_org(org)
        .not_archived()
        .filter(~Q(visibility=Agent.Visibility.PRIVATE) | Q(created_by=request.user))
        .order_by(F("last_activity_at").desc(nulls_last=True), "-updated_at")
    )
    return TemplateResponse(
        request,
        "accounts/dashboard.html",
        {
            "agents": agents[:6],
            "agent_count": agents.count(),
            "member_count": org.memberships.count(),
            "pending_invitations": Invitation.objects.for_org(org).pending().count(),
            "active_keys": ApiKey.objects.for_org(org).active().count(),
            "recent_activity": AuditLog.objects.filter(organization=org).select_related("actor")[:8],
            "notifications": request.user.notifications.all()[:5],
        },
    )


@login_required
@require_POST
def org_switch(request: AuthedHttpRequest) -> HttpResponse:
    pk = as_pk(request.POST.get("org"))
    org = Organization.objects.for_user(request.user).filter(pk=pk).first() if pk else None
    if org is None:
        raise Http404("Unknown organization.")
    services.organization_switch(user=request.user, org=org)
    request.session[SESSION_ORG_KEY] = org.pk
    messages.success(request, f"Switched to {org.name}.")
    target = request.POST.get("next") or reverse("dashboard")
    if not target.startswith("/") or target.startswith("//"):
        target = reverse("dashboard")
    return redirect(target)


@login_required
def org_create(request: AuthedHttpRequest) -> HttpResponse:
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        org = services.organization_create(name=form.cleaned_data["name"], owner=request.user)
        services.organization_switch(user=request.user, org=org)
        request.session[SESSION_ORG_KEY] = org.pk
        messages.success(request, f"Created {org.name}.")
        return redirect("org_settings")
    return TemplateResponse(request, "accounts/org_create.html", {"form": form})


def _settings_context(request: AuthedHttpRequest, **extra: object) -> dict[str, object]:
    org = request.org
    context: dict[str, object] = {
        "org": org,
        "members": org.memberships.select_related("user").order_by("created_at"),
        "invitations": Invitation.objects.for_org(org).pending().select_related("invited_by"),
        "api_keys": ApiKey.objects.for_org(org).select_related("created_by"),
        "org_form": OrganizationForm(initial={"name": org.name}),
        "invite_form": InvitationForm(),
        "key_form": ApiKeyForm(),
        "roles": Role.choices,
        "new_key": None,
    }
    context.update(extra)
    return context


@org_role_required(Role.VIEWER)
def org_settings(request: AuthedHttpRequest) -> HttpResponse:
    org = request.org
    if request.method == "POST":
        # Renaming is an admin action; the rest of the page is read-only for lower roles.
        from accounts.models import role_at_least

        if not role_at_least(request.org_role, Role.ADMIN):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied("Only admins can rename the organization.")
        form = OrganizationForm(request.POST)
        if form.is_valid():
            services.organization_update(org=org, by=request.user, name=form.cleaned_data["name"])
            messages.success(request, "Organization renamed.")
            return redirect("org_settings")
        return TemplateResponse(
            request, "accounts/org_settings.html", _settings_context(request, org_form=form)
        )
    return TemplateResponse(request, "accounts/org_settings.html", _settings_context(request))


def _service_call(fn, **kwargs):  # type: ignore[no-untyped-def]
    """Run a service; turn its refusal into a message beside the page instead of a crash."""
    try:
        return fn(**kwargs), None
    except services.ServiceError as exc:
        if exc.status == 404:
            raise Http404(str(exc))
        return None, str(exc)


def _settings_partial(request: AuthedHttpRequest, partial: str, **extra: object) -> HttpResponse:
    if request.htmx:
        return TemplateResponse(
            request, f"accounts/org_settings.html#{partial}", _settings_context(request, **extra)
        )
    error = extra.get("error")
    if error:
        messages.error(request, str(error))
    return redirect("org_settings")


@org_role_required(Role.ADMIN)
@require_POST
def member_role(request: AuthedHttpRequest, membership_id: int) -> HttpResponse:
    membership = get_object_or_404(Membership, pk=membership_id, organization=request.org)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return _settings_partial(request, "members", error="Choose a valid role.")
    _, error = _service_call(
        services.membership_change_role,
        membership=membership,
        role=form.cleaned_data["role"],
        by=request.user,
        request=request,
    )
    if not error and not request.htmx:
        messages.success(request, f"{membership.user.email} is now {membership.get_role_display()}.")
    return _settings_partial(request, "members", error=error)


@org_role_required(Role.VIEWER)
@require_POST
def member_remove(request: AuthedHttpRequest, membership_id: int) -> HttpResponse:
    membership = get_object_or_404(Membership, pk=membership_id, organization=request.org)
    _, error = _service_call(
        services.membership_remove, membership=membership, by=request.user, request=request
    )
    if error:
        return _settings_partial(request, "members", error=error)
    if membership.user_id == request.user.pk:
        request.session.pop(SESSION_ORG_KEY, None)
        messages.success(request, f"You left {membership.organization.name}.")
        return redirect("dashboard")
    messages.success(request, f"Removed {membership.user.email}.")
    return _settings_partial(request, "members")


@org_role_required(Role.ADMIN)
@require_POST
def invitation_create(request: AuthedHttpRequest) -> HttpResponse:
    form = InvitationForm(request.POST)
    if form.is_valid():
        _, error = _service_call(
            services.invitation_create,
            org=request.org,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            by=request.user,
            request=request,
        )
        if error is None:
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
            return _settings_partial(request, "invitations")
        form.add_error("email", error)
    # htmx swaps only 2xx answers, so the form with its errors comes back as a 200.
    template = "accounts/org_settings.html#invitations" if request.htmx else "accounts/org_settings.html"
    return TemplateResponse(request, template, _settings_context(request, invite_form=form))


@org_role_required(Role.ADMIN)
@require_POST
def invitation_revoke(request: AuthedHttpRequest, invitation_id: int) -> HttpResponse:
    invitation = get_for_org_or_404(Invitation, request.org, pk=invitation_id)
    _, error = _service_call(
        services.invitation_revoke, invitation=invitation, by=request.user, request=request
    )
    return _settings_partial(request, "invitations", error=error)


@org_role_required(Role.ADMIN)
@require_POST
def api_key_create(request: AuthedHttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return TemplateResponse(
            request, "accounts/org_settings.html", _settings_context(request, key_form=form)
        )
    result, error = _service_call(
        services.api_key_create,
        org=request.org,
        name=form.cleaned_data["name"],
        role=form.cleaned_data["role"],
        by=request.user,
        request=request,
    )
    if error:
        form.add_error("role", error)
        return TemplateResponse(
            request, "accounts/org_settings.html", _settings_context(request, key_form=form)
        )
    key, raw = result
    # The raw key is rendered into this one response and never stored or shown again.
    template = "accounts/org_settings.html#api_keys" if request.htmx else "accounts/org_settings.html"
    response = TemplateResponse(
        request, template, _settings_context(request, new_key={"key": key, "raw": raw})
    )
    response["Cache-Control"] = "no-store"
    return response


@org_role_required(Role.ADMIN)
@require_POST
def api_key_revoke(request: AuthedHttpRequest, key_id: int) -> HttpResponse:
    key = get_for_org_or_404(ApiKey, request.org, pk=key_id)
    services.api_key_revoke(key=key, by=request.user, request=request)
    if not request.htmx:
        messages.success(request, f"Revoked key {key.prefix}….")
    return _settings_partial(request, "api_keys")


@org_role_required(Role.ADMIN)
def audit_log(request: AuthedHttpRequest) -> TemplateResponse:
    from django.core.paginator import Paginator

    entries = AuditLog.objects.filter(organization=request.org).select_related("actor")
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    return TemplateResponse(request, "accounts/audit_log.html", {"page": page})


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = Invitation.objects.select_related("organization", "invited_by").filter(token=token).first()
    if invitation is None:
        raise Http404("This invitation link is not valid.")
    if not request.user.is_authenticated:
        messages.info(
            request,
            f"Sign in or create an account as {invitation.email} to join {invitation.organization.name}.",
        )
        return redirect(f"{reverse('account_signup')}?next={request.path}")
    error = None
    if request.method == "POST":
        membership, error = _service_call(
            services.invitation_accept, invitation=invitation, user=request.user, request=request
        )
        if membership is not None:
            request.session[SESSION_ORG_KEY] = invitation.organization_id
            messages.success(request, f"Welcome to {invitation.organization.name}!")
            return redirect("dashboard")
    return TemplateResponse(
        request, "accounts/invitation_accept.html", {"invitation": invitation, "error": error}
    )
