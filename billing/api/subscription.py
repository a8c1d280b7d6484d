"""/api/v1/billing/ (docs 000 and 003): plans, the subscription and its limits, and the credit summary."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from billing import limits, payments
from billing.api.common import ERRORS, ERRORS_PAY, acting_user, call, doc, payer, reader
from billing.ledger import account_for, q
from billing.models import CreditTransaction, Plan
from billing.serializers import (
    CreditsOutput,
    LimitCheckInput,
    LimitCheckOutput,
    LimitsOutput,
    PlanOutput,
    RedirectOutput,
    SubscriptionOutput,
    UpgradeInput,
)

T = CreditTransaction.Type


@doc(responses={200: PlanOutput(many=True), **ERRORS}, tags=["billing"])
@api_view(["GET"])
def plans(request: Request) -> Response:
    ctx = reader(request)
    current = account_for(ctx.org).plan_id
    return Response(
        PlanOutput(Plan.objects.filter(is_public=True), many=True, context={"current_plan_id": current}).data
    )


@doc(responses={200: SubscriptionOutput, **ERRORS}, tags=["billing"])
@api_view(["GET"])
def subscription(request: Request) -> Response:
    ctx = reader(request)
    account = account_for(ctx.org)
    data = {
        "plan": account.plan,
        "interval": account.interval,
        "status": account.subscription_status,
        "has_subscription": bool(account.stripe_subscription_id),
        "current_period_end": account.current_period_end,
        "payments_configured": payments.payments_configured(),
    }
    return Response(SubscriptionOutput(data, context={"current_plan_id": account.plan_id}).data)


@doc(
    request=UpgradeInput,
    responses={200: RedirectOutput, **ERRORS_PAY},
    tags=["billing"],
    description="Change the plan. Without a live subscription this returns a Stripe Checkout URL; with "
    "one, the customer portal, where Stripe prorates the change (or cancels, for Free). Enterprise is by "
    "contract: 400 `contact_us`. Admins and owners only.",
)
@api_view(["POST"])
def subscription_upgrade(request: Request) -> Response:
    ctx = payer(request)
    body = UpgradeInput(data=request.data)
    body.is_valid(raise_exception=True)
    redirect = call(
        payments.subscription_change,
        org=ctx.org,
        by=acting_user(request, ctx),
        plan_slug=body.validated_data["plan"],
        interval=body.validated_data["interval"],
    )
    return Response(RedirectOutput(redirect).data)


@doc(
    methods=["GET"], responses={200: LimitsOutput, **ERRORS}, tags=["billing"], operation_id="billing_limits"
)
@doc(
    methods=["POST"],
    request=LimitCheckInput,
    responses={200: LimitCheckOutput, **ERRORS},
    tags=["billing"],
    operation_id="billing_limits_check",
    description="Whether the plan allows creating `adding` more of a resource (nothing is created).",
)
@api_view(["GET", "POST"])
def subscription_limits(request: Request) -> Response:
    ctx = reader(request)
    upgrade = request.build_absolute_uri(limits.upgrade_url())
    if request.method == "GET":
        rows = limits.snapshot(ctx.org)
        return Response(
            LimitsOutput(
                {"plan": account_for(ctx.org).plan.slug, "limits": rows, "upgrade_url": upgrade}
            ).data
        )
    body = LimitCheckInput(data=request.data)
    body.is_valid(raise_exception=True)
    resource, adding = body.validated_data["resource"], body.validated_data["adding"]
    message = ""
    try:
        limits.check(ctx.org, resource, adding=adding)
        allowed = True
    except limits.PlanLimitReached as exc:
        allowed, message = False, str(exc)
    account = account_for(ctx.org)
    used = limits.usage(ctx.org, resource)
    out = {
        "resource": resource,
        "allowed": allowed,
        "limit": account.plan.limit(resource),
        "used": round(used, 2) if isinstance(used, float) else used,
        "message": message,
        "upgrade_url": upgrade,
    }
    return Response(LimitCheckOutput(out).data)


@doc(responses={200: CreditsOutput, **ERRORS}, tags=["billing"])
@api_view(["GET"])
def credits(request: Request) -> Response:
    ctx = reader(request)
    account = account_for(ctx.org)
    now = timezone.now()
    entries = CreditTransaction.objects.for_org(ctx.org)
    expiring = list(
        entries.filter(type=T.GRANT, expires_at__gt=now)
        .order_by("expires_at")
        .values("amount", "expires_at", "description")
    )
    expiring_total = min(sum((e["amount"] for e in expiring), Decimal(0)), account.balance)
    used = entries.filter(type=T.USAGE, created_at__gte=limits.month_start(now)).aggregate(s=Sum("amount"))[
        "s"
    ]
    data = {
        "balance": account.balance,
        "plan": account.plan.slug,
        "plan_monthly_credits": account.plan.monthly_credits,
        "next_allocation_at": account.current_period_end if account.stripe_subscription_id else None,
        "expiring": expiring,
        "expiring_total": q(expiring_total),
        "used_this_month": q(-(used or 0)),
        "payments_configured": payments.payments_configured(),
    }
    return Response(CreditsOutput(data).data)
