"""/api/v1/payments/ (doc 001 §4.9): Stripe Checkout sessions and the Stripe webhook."""

from __future__ import annotations

from django.http import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from billing import payments, webhooks
from billing.api.common import ERRORS_PAY, acting_user, call, doc, payer
from billing.serializers import CheckoutInput, RedirectOutput
from config.api import ErrorEnvelopeSerializer


@doc(
    request=CheckoutInput,
    responses={201: RedirectOutput, **ERRORS_PAY},
    tags=["payments"],
    description="A Stripe Checkout Session: `kind=pack` buys a credit pack (one-time, at your plan's pack "
    "discount), `kind=subscription` subscribes to a plan monthly or yearly. Admins and owners only.",
)
@api_view(["POST"])
def create_checkout_session(request: Request) -> Response:
    ctx = payer(request)
    body = CheckoutInput(data=request.data)
    body.is_valid(raise_exception=True)
    data = body.validated_data
    redirect = call(
        payments.create_checkout_session,
        org=ctx.org,
        by=acting_user(request, ctx),
        kind=data["kind"],
        pack_slug=data.get("pack"),
        credits=data.get("credits"),
        plan_slug=data.get("plan"),
        interval=data["interval"],
    )
    return Response(RedirectOutput(redirect).data, status=201)


@extend_schema(
    request={"application/json": OpenApiTypes.OBJECT},
    responses={
        (200, "text/plain"): OpenApiTypes.STR,
        400: ErrorEnvelopeSerializer,
        503: ErrorEnvelopeSerializer,
    },
    parameters=[
        OpenApiParameter(
            "Stripe-Signature",
            str,
            OpenApiParameter.HEADER,
            required=True,
            description="Stripe's signature of the raw body with the endpoint secret (`t=...,v1=...`).",
        )
    ],
    auth=[],
    tags=["payments"],
    operation_id="payments_webhook",
    description="Stripe's webhook, verified and stored by dj-stripe. A bad signature is a 400 and "
    "changes nothing. Handles checkout.session.completed, invoice.paid / invoice.payment_succeeded and "
    "customer.subscription.created / updated / deleted; every grant is idempotent.",
)
@api_view(["POST"])
@authentication_classes([])
@permission_classes([AllowAny])
@throttle_classes([])
def stripe_webhook(request: Request) -> HttpResponseBase:
    # The raw body is what Stripe signed: hand dj-stripe the Django request before DRF parses it.
    return webhooks.receive(request._request)
