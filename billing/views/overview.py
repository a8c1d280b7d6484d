"""The billing page (balance, plan, usage charts, buy credits, recent entries), the plans page, and
the low-balance and budget settings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.decorators import org_role_required
from accounts.models import Role
from accounts.types import AuthedHttpRequest
from billing.catalog import KNOWLEDGE_CONTEXT_PER_1K, TOOL_COSTS
from billing.forms import AlertSettingsForm
from billing.ledger import account_for
from billing.models import BillingAccount, CreditPack, CreditTransaction, ModelPrice, Plan
from billing.views.common import NOT_CONFIGURED, can_manage, payments_configured
from billing.views.usage import usage_form, usage_summary

RECENT = 8
LIMITS = (
    ("agents", "Agents"),
    ("workflows", "Workflows"),
    ("kb_storage_mb", "Knowledge storage"),
    ("integrations", "Integrations"),
    ("api_keys", "API keys"),
    ("runs_per_month", "Runs a month"),
)
CHARTS = (
    {"key": "by_day", "title": "Credits by day", "kind": "bar"},
    {"key": "by_agent", "title": "By agent", "kind": "hbar"},
    {"key": "by_model", "title": "By model", "kind": "doughnut"},
    {"key": "by_user", "title": "By person", "kind": "hbar"},
)
CHECKOUT_NOTES = {
    "success": "Thank you! Your payment went through: credits and plan changes show up here in a few seconds.",
    "cancelled": "Checkout was cancelled: nothing was charged.",
}


def _common(request: AuthedHttpRequest, account: BillingAccount) -> dict[str, Any]:
    note = CHECKOUT_NOTES.get(request.GET.get("checkout", ""))
    return {
        "account": account,
        "plan": account.plan,
        "is_low": account.balance < account.low_balance_threshold,
        "can_manage": can_manage(request),
        "payments_ready": payments_configured(),
        "not_configured": NOT_CONFIGURED,
        "checkout_note": note,
        "checkout_ok": request.GET.get("checkout") == "success",
    }


def _two_places(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Decimal("0.01"))


def packs_for(plan: Plan) -> list[dict[str, Any]]:
    return [
        {
            "pack": pack,
            "price_cents": pack.price_for(plan),
            "list_cents": pack.price_cents,
            "discounted": pack.price_for(plan) < pack.price_cents,
            "cents_per_credit": pack.price_for(plan) / pack.credits if pack.credits else 0,
        }
        for pack in CreditPack.objects.filter(is_active=True)
    ]


def index_page(request: AuthedHttpRequest, status: int = 200) -> TemplateResponse:
    account = account_for(request.org)
    form, start, end = usage_form(request)
    usage = usage_summary(request.org.pk, start, end)
    context = _common(request, account)
    context.update(
        {
            "usage_form": form,
            "usage": usage,
            "charts": CHARTS,
            "usage_tables": [
                {
                    "title": c["title"].removeprefix("By ").capitalize(),
                    "rows": list(zip(*usage[c["key"]].values(), strict=True)),
                }
                for c in CHARTS[1:]
            ],
            "expiring": CreditTransaction.objects.for_org(request.org)
            .filter(expires_at__gt=timezone.now(), amount__gt=0)
            .order_by("expires_at")
            .first(),
            "recent": CreditTransaction.objects.for_org(request.org)
            .select_related("user", "agent", "workflow")
            .order_by("-created_at", "-id")[:RECENT],
            "packs": packs_for(account.plan),
            "alert_form": AlertSettingsForm(
                initial={
                    "low_balance_threshold": _two_places(account.low_balance_threshold),
                    "monthly_budget": _two_places(account.monthly_budget),
                }
            ),
        }
    )
    template = "billing/index.html"
    if request.htmx and request.htmx.target == "billing-usage":
        template += "#usage"
    return TemplateResponse(request, template, context, status=status)


@org_role_required()
def index(request: AuthedHttpRequest) -> TemplateResponse:
    return index_page(request)


def _limit(plan: Plan, key: str) -> str:
    value = plan.limit(key)
    if value is None:
        return "Unlimited"
    if key == "kb_storage_mb":
        return f"{value // 1000:,} GB" if value >= 1000 and value % 1000 == 0 else f"{value:,} MB"
    return f"{value:,}"


def plans_page(request: AuthedHttpRequest, status: int = 200) -> TemplateResponse:
    account = account_for(request.org)
    plans = list(Plan.objects.filter(is_public=True))
    context = _common(request, account)
    context.update(
        {
            "plans": plans,
            "limit_rows": [(label, [_limit(p, key) for p in plans]) for key, label in LIMITS],
            "contact_email": getattr(settings, "SALES_EMAIL", "") or "sales@agentos.local",
            "model_prices": ModelPrice.objects.order_by("label", "pattern"),
            "tool_costs": TOOL_COSTS,
            "knowledge_per_1k": KNOWLEDGE_CONTEXT_PER_1K,
        }
    )
    return TemplateResponse(request, "billing/plans.html", context, status=status)


@org_role_required()
def plans(request: AuthedHttpRequest) -> TemplateResponse:
    return plans_page(request)


@org_role_required(Role.ADMIN)
@require_POST
def alert_settings(request: AuthedHttpRequest) -> HttpResponse:
    form = AlertSettingsForm(request.POST)
    if not form.is_valid():
        first = next(iter(form.errors.values()))[0]
        messages.error(request, f"Not saved: {first}")
        return index_page(request, status=400)
    # An update of just these columns: the balance is the ledger's, never written back from a form.
    BillingAccount.objects.filter(organization=request.org).update(
        low_balance_threshold=form.cleaned_data["low_balance_threshold"],
        monthly_budget=form.cleaned_data["monthly_budget"],
    )
    messages.success(request, "Alert settings saved.")
    return redirect("billing_index")
