"""/api/v1/models/providers and /api/v1/users/api-keys: model providers and bring-your-own keys (doc 001 §4.6)."""

from __future__ import annotations

from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role
from agents import keys
from agents.api.common import ERRORS, acting_user, call, doc, org_for
from agents.models import ProviderKey
from agents.runtime.providers import PROVIDERS, ProviderInfo, default_model, get_provider, is_configured
from agents.serializers import (
    ProviderCapabilitiesOutput,
    ProviderKeyInput,
    ProviderKeyOutput,
    ProviderModelsOutput,
    ProviderOutput,
)
from config.api import ApiError


def _provider(provider_id: str) -> ProviderInfo:
    return call(get_provider, provider_id=provider_id)


@doc(responses={200: ProviderOutput(many=True), **ERRORS}, tags=["models"])
@api_view(["GET"])
def provider_list(request: Request) -> Response:
    """Every provider, whether this organization can use it now, and which one new agents start on."""
    ctx = org_for(request)
    default_provider, _ = default_model(org=ctx.org)
    data = [
        {
            "id": info.id,
            "label": info.label,
            "kind": info.kind,
            "configured": is_configured(org=ctx.org, provider_id=info.id),
            "default": info.id == default_provider,
            "models": list(info.models),
        }
        for info in PROVIDERS.values()
    ]
    return Response(ProviderOutput(data, many=True).data)


@doc(responses={200: ProviderModelsOutput, **ERRORS}, tags=["models"])
@api_view(["GET"])
def provider_models(request: Request, provider_id: str) -> Response:
    """Known model names. OpenAI-compatible servers accept any name their server serves."""
    ctx = org_for(request)
    info = _provider(provider_id)
    default_provider, default_name = default_model(org=ctx.org)
    fallback = info.models[0] if info.models else None
    return Response(
        ProviderModelsOutput(
            {
                "provider": info.id,
                "models": list(info.models),
                "default_model": default_name if default_provider == info.id else fallback,
            }
        ).data
    )


@doc(responses={200: ProviderCapabilitiesOutput, **ERRORS}, tags=["models"])
@api_view(["GET"])
def provider_capabilities(request: Request, provider_id: str) -> Response:
    org_for(request)
    info = _provider(provider_id)
    return Response(ProviderCapabilitiesOutput({"provider": info.id, "capabilities": info.capabilities}).data)


# ------------------------------------------------------------------ BYO keys


@doc(methods=["GET"], responses={200: ProviderKeyOutput(many=True), **ERRORS}, tags=["models"])
@doc(
    methods=["POST"],
    request=ProviderKeyInput,
    responses={201: ProviderKeyOutput, **ERRORS},
    tags=["models"],
    description="Save the organization's own key for a provider (admins). The key is tested with one tiny "
    "call first (unless `test` is false), stored encrypted and only ever shown masked. A base URL on a "
    "private or loopback address is refused.",
)
@api_view(["GET", "POST"])
def provider_key_list(request: Request) -> Response:
    if request.method == "GET":
        ctx = org_for(request)
        queryset = ProviderKey.objects.for_org(ctx.org).select_related("created_by").order_by("provider")
        return Response(ProviderKeyOutput(queryset, many=True).data)
    ctx = org_for(request, Role.ADMIN)
    by = acting_user(request, ctx)
    if by is None:
        raise ApiError(403, "permission_denied", "Use a key whose creator is still an admin here.")
    body = ProviderKeyInput(data=request.data)
    body.is_valid(raise_exception=True)
    data = body.validated_data
    key = call(
        keys.provider_key_set,
        org=ctx.org,
        by=by,
        provider=data["provider"],
        api_key=data["api_key"],
        base_url=data["base_url"],
        label=data["label"],
        test=data["test"],
        model=data["model"],
    )
    response = Response(ProviderKeyOutput(key).data, status=status.HTTP_201_CREATED)
    response["Cache-Control"] = "no-store"
    return response


@doc(responses={204: None, **ERRORS}, tags=["models"])
@api_view(["DELETE"])
def provider_key_detail(request: Request, key_id: int) -> Response:
    ctx = org_for(request, Role.ADMIN)
    by = acting_user(request, ctx)
    if by is None:
        raise ApiError(403, "permission_denied", "Use a key whose creator is still an admin here.")
    key = ProviderKey.objects.for_org(ctx.org).filter(pk=key_id).first()
    if key is None:
        raise ApiError(404, "not_found", "No such provider key in this organization.")
    keys.provider_key_delete(key=key, by=by)
    return Response(status=status.HTTP_204_NO_CONTENT)
