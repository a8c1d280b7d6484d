"""/api/v1/credits/ (doc 001 §4.9): buy a pack, the balance, the ledger history."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from billing import payments
from billing.api.common import (
    DATE_PARAMS,
    ERRORS,
    ERRORS_PAY,
    acting_user,
    call,
    date_range,
    doc,
    filter_days,
    paginate,
    payer,
    reader,
)
from billing.ledger import account_for
from billing.models import CreditPack, CreditTransaction
from billing.serializers import BalanceOutput, PackOutput, PurchaseInput, PurchaseOutput, TransactionOutput


@doc(
    request=PurchaseInput,
    responses={201: PurchaseOutput, **ERRORS_PAY},
    tags=["credits"],
    description="Start buying a credit pack: returns the Stripe Checkout URL to send the buyer to. "
    "The credits arrive when Stripe reports the payment. Admins and owners only. "
    "503 `payments_not_configured` when the server has no Stripe keys.",
)
@api_view(["POST"])
def credits_purchase(request: Request) -> Response:
    ctx = payer(request)
    body = PurchaseInput(data=request.data)
    body.is_valid(raise_exception=True)
    pack = call(
        payments.pack_for, pack=body.validated_data.get("pack"), credits=body.validated_data.get("credits")
    )
    redirect = call(
        payments.create_checkout_session,
        org=ctx.org,
        by=acting_user(request, ctx),
        kind=payments.PACK,
        pack_slug=pack.slug,
    )
    out = {
        "kind": redirect.kind,
        "url": redirect.url,
        "session_id": redirect.session_id,
        "pack": pack.slug,
        "credits": pack.credits,
        "price_cents": pack.price_for(account_for(ctx.org).plan),
    }
    return Response(PurchaseOutput(out).data, status=201)


@doc(
    responses={200: PackOutput(many=True), **ERRORS},
    tags=["credits"],
    description="The credit packs, with your plan's price.",
)
@api_view(["GET"])
def credits_packs(request: Request) -> Response:
    ctx = reader(request)
    plan = account_for(ctx.org).plan
    packs = CreditPack.objects.filter(is_active=True)
    return Response(PackOutput(packs, many=True, context={"plan": plan}).data)


@doc(responses={200: BalanceOutput, **ERRORS}, tags=["credits"])
@api_view(["GET"])
def credits_balance(request: Request) -> Response:
    ctx = reader(request)
    account = account_for(ctx.org)
    return Response(
        BalanceOutput(
            {
                "balance": account.balance,
                "plan": account.plan.slug,
                "low_balance_threshold": account.low_balance_threshold,
                "payments_configured": payments.payments_configured(),
            }
        ).data
    )


@doc(
    responses={200: TransactionOutput(many=True), **ERRORS},
    parameters=[
        OpenApiParameter(
            "type", str, enum=CreditTransaction.Type.values, description="Only this type of entry."
        ),
        *DATE_PARAMS,
    ],
    tags=["credits"],
    description="The ledger, newest first: every grant, purchase, usage, reservation, release, refund, "
    "expiry and adjustment with the balance after it.",
)
@api_view(["GET"])
def credits_history(request: Request) -> Response:
    ctx = reader(request)
    queryset = CreditTransaction.objects.for_org(ctx.org).select_related("user")
    wanted = request.query_params.get("type")
    if wanted:
        if wanted not in CreditTransaction.Type.values:
            raise ValidationError({"type": [f"Use one of {', '.join(CreditTransaction.Type.values)}."]})
        queryset = queryset.filter(type=wanted)
    start, end = date_range(request, default_days=None)
    queryset = filter_days(queryset, start, end)
    return paginate(request, queryset.order_by("-created_at", "-id"), TransactionOutput)
