"""The "add credits" prompt other apps show when a run is refused for credits (a ServiceError with
code "insufficient_credits", status 402): inline for htmx, else a page that says so with a link to buy."""

from __future__ import annotations

from typing import Any

from django.template.response import TemplateResponse

from accounts.types import AuthedHttpRequest
from billing.ledger import account_for
from billing.views.common import can_manage

CODE = "insufficient_credits"
# Refusals that money solves: no credits, a plan limit (upgrade), a cost cap (raise it).
CODES = {CODE: "Not enough credits", "plan_limit": "Plan limit reached", "cost_cap": "Cost cap reached"}


def is_billing_refusal(exc: Exception) -> bool:
    return getattr(exc, "code", None) in CODES


def _context(request: AuthedHttpRequest, exc: Exception, back_url: str) -> dict[str, Any]:
    account = account_for(request.org)
    code = getattr(exc, "code", CODE)
    return {
        "code": code,
        "title": CODES.get(code, CODES[CODE]),
        "message": str(exc),
        "back_url": back_url,
        "account": account,
        "can_manage": can_manage(request),
    }


def credits_required(
    request: AuthedHttpRequest, exc: Exception, back_url: str, *, target: str | None = None
) -> TemplateResponse:
    """The refusal with a way out. With htmx and a `target`, a 200 fragment aimed at it (htmx swaps
    only 2xx answers); otherwise a 402 page."""
    context = _context(request, exc, back_url)
    if getattr(request, "htmx", False) and target:
        response = TemplateResponse(request, "billing/_credits_prompt.html", context)
        response["HX-Retarget"] = target
        response["HX-Reswap"] = "innerHTML"
        return response
    return TemplateResponse(request, "billing/credits_required.html", context, status=402)
