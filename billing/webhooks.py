"""Stripe webhooks, through dj-stripe.

dj-stripe's view verifies the `Stripe-Signature` header against the endpoint's secret (a bad one is a
400 and processes nothing), stores the event once by its id (a redelivered event is not processed
again) and syncs the Stripe objects; then it sends one signal per event type. The handlers below hang
on those signals and hand the event's object to `billing.stripe_sync`. They run in dj-stripe's
transaction, so a failure rolls everything back and Stripe retries.

Stripe posts to `/api/v1/payments/webhook` (doc 001 §4.9). That endpoint is a dj-stripe
`WebhookEndpoint` row kept in step with STRIPE_WEBHOOK_SECRET; endpoints created in the dj-stripe admin
answer at `/stripe/webhook/<uuid>/` as usual.
"""

from __future__ import annotations

import logging
from typing import Any

import stripe
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from djstripe.event_handlers import djstripe_receiver
from djstripe.models import Event, WebhookEndpoint
from djstripe.views import ProcessWebhookView

from billing import stripe_sync

logger = logging.getLogger(__name__)

ENV_ENDPOINT_ID = "we_agentos_env"  # the local row for the endpoint configured by STRIPE_WEBHOOK_SECRET
HANDLED = [
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "invoice.paid",
    "invoice.payment_succeeded",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
]


# -------------------------------------------------------------- handlers


@djstripe_receiver(["checkout.session.completed", "checkout.session.async_payment_succeeded"])
def on_checkout_session(sender: Any, event: Event, **kwargs: Any) -> None:
    stripe_sync.checkout_completed(session=event.data["object"], at=event.created)


@djstripe_receiver(["invoice.paid", "invoice.payment_succeeded"])
def on_invoice_paid(sender: Any, event: Event, **kwargs: Any) -> None:
    stripe_sync.invoice_paid(invoice=event.data["object"], at=event.created)


@djstripe_receiver(
    ["customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted"]
)
def on_subscription(sender: Any, event: Event, **kwargs: Any) -> None:
    stripe_sync.subscription_changed(
        subscription=event.data["object"], at=event.created, deleted=event.type.endswith(".deleted")
    )


# -------------------------------------------------------------- endpoint


def env_endpoint() -> WebhookEndpoint | None:
    """The dj-stripe endpoint whose secret is STRIPE_WEBHOOK_SECRET (created or updated to match)."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        return None
    endpoint = WebhookEndpoint.objects.filter(id=ENV_ENDPOINT_ID).first()
    livemode = bool(settings.STRIPE_LIVE_MODE)
    if endpoint is None:
        endpoint, _ = WebhookEndpoint.objects.get_or_create(
            id=ENV_ENDPOINT_ID,
            defaults={
                "secret": secret,
                "livemode": livemode,
                "url": settings.SITE_URL.rstrip("/") + "/api/v1/payments/webhook",
                "enabled_events": HANDLED,
                "status": "enabled",
                "metadata": {"source": "STRIPE_WEBHOOK_SECRET"},
            },
        )
    if endpoint.secret != secret or endpoint.livemode != livemode:  # the secret was rotated
        endpoint.secret, endpoint.livemode = secret, livemode
        endpoint.save(update_fields=["secret", "livemode"])
    return endpoint


WEBHOOK_TOLERANCE_SECONDS = 300  # Stripe's own default: a delivery older than this is refused


def receive(request: HttpRequest) -> HttpResponse:
    """Hand the request to dj-stripe's webhook view for the environment's endpoint."""
    endpoint = env_endpoint()
    if endpoint is None:
        return JsonResponse(
            {
                "detail": "Stripe webhooks are not configured on this server (STRIPE_WEBHOOK_SECRET is not set).",
                "error_code": "payments_not_configured",
                "field_errors": {},
            },
            status=503,
        )
    # dj-stripe accepts a secret from this header when DEBUG is on (for `stripe listen`); a signature
    # must only ever be checked against the configured secret here.
    request.META.pop("HTTP_X_DJSTRIPE_WEBHOOK_SECRET", None)
    request.__dict__.pop("headers", None)
    # Verify first, so a bad delivery writes nothing at all (dj-stripe would log it as a trigger row).
    try:
        stripe.WebhookSignature.verify_header(
            request.body.decode("utf-8", errors="replace"),
            request.META.get("HTTP_STRIPE_SIGNATURE", ""),
            endpoint.secret,
            tolerance=WEBHOOK_TOLERANCE_SECONDS,
        )
        verified = True
    except (stripe.SignatureVerificationError, ValueError):
        verified = False
    response = ProcessWebhookView.as_view()(request, uuid=endpoint.djstripe_uuid) if verified else None
    if response is None or response.status_code == 400:
        return JsonResponse(
            {
                "detail": "The webhook did not verify: a missing or bad Stripe-Signature, or not a Stripe event.",
                "error_code": "invalid_signature",
                "field_errors": {},
            },
            status=400,
        )
    return response
