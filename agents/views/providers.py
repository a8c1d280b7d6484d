"""/agents/models/: the model providers, which are configured, and the org's own keys (admins)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_POST

from accounts.decorators import org_role_required
from accounts.models import Role
from accounts.services import ServiceError
from accounts.types import AuthedHttpRequest
from agents.forms import ProviderKeyForm
from agents.keys import provider_key_delete, provider_key_set, provider_key_test
from agents.models import ProviderKey
from agents.runtime.providers import PROVIDERS, credentials_for, default_model, is_configured


def _page(
    request: AuthedHttpRequest, form: ProviderKeyForm | None = None, status: int = 200
) -> TemplateResponse:
    org = request.org
    keys = {k.provider: k for k in ProviderKey.objects.for_org(org)}
    providers = []
    for pid, info in PROVIDERS.items():
        creds = credentials_for(org=org, provider_id=pid)
        providers.append(
            {
                "id": pid,
                "info": info,
                "configured": is_configured(org=org, provider_id=pid),
                "source": creds.source if info.kind != "demo" else "built-in",
                "key": keys.get(pid),
            }
        )
    return TemplateResponse(
        request,
        "agents/providers.html",
        {"providers": providers, "form": form or ProviderKeyForm(), "default_model": default_model(org=org)},
        status=status,
    )


@org_role_required()
def providers(request: AuthedHttpRequest) -> TemplateResponse:
    return _page(request)


@org_role_required(Role.ADMIN)
@require_POST
def provider_key_save(request: AuthedHttpRequest) -> HttpResponse:
    form = ProviderKeyForm(request.POST)
    if not form.is_valid():
        return _page(request, form)
    data = form.cleaned_data
    test_only = request.POST.get("action") == "test"
    try:
        if test_only:
            provider_key_test(
                provider=data["provider"],
                api_key=data["api_key"],
                base_url=data["base_url"],
                model=data["model"],
            )
        else:
            provider_key_set(
                org=request.org,
                by=request.user,
                provider=data["provider"],
                api_key=data["api_key"],
                base_url=data["base_url"],
                label=data["label"],
                model=data["model"],
                test=request.POST.get("skip_test") != "on",
            )
    except ServiceError as exc:
        form.add_error("base_url" if exc.code == "unsafe_url" else "api_key", str(exc))
        return _page(request, form)
    label = PROVIDERS[data["provider"]].label
    if test_only:
        messages.success(request, f"{label} accepted the key. Save it to use it.")
        # Re-render (not redirect) so the typed values stay; the key itself is never echoed back.
        return _page(request, ProviderKeyForm(initial={k: v for k, v in data.items() if k != "api_key"}))
    messages.success(request, f"Saved the {label} key. Agents of this organization use it from now on.")
    return redirect("agents_providers")


@org_role_required(Role.ADMIN)
@require_POST
def provider_key_remove(request: AuthedHttpRequest, key_id: int) -> HttpResponse:
    key = ProviderKey.objects.for_org(request.org).filter(pk=key_id).first()
    if key is None:
        raise Http404("No such key.")
    provider_key_delete(key=key, by=request.user)
    info = PROVIDERS.get(key.provider)
    messages.success(request, f"Deleted the {info.label if info else key.provider} key.")
    return redirect("agents_providers")
