"""Billing API paths, relative to /api/v1/ (doc 001 §4.9; docs 000 and 003 for /billing/)."""

from __future__ import annotations

from django.urls import path

from billing.api import credits, payments, subscription, usage

urlpatterns = [
    # credits and payments (doc 001 §4.9)
    path("credits/purchase", credits.credits_purchase, name="api-credits-purchase"),
    path("credits/packs", credits.credits_packs, name="api-credits-packs"),
    path("credits/balance", credits.credits_balance, name="api-credits-balance"),
    path("credits/history", credits.credits_history, name="api-credits-history"),
    path("payments/create-checkout-session", payments.create_checkout_session, name="api-checkout-session"),
    path("payments/webhook", payments.stripe_webhook, name="api-stripe-webhook"),
    # plans, subscription, limits and usage (docs 000 and 003)
    path("billing/plans", subscription.plans, name="api-billing-plans"),
    path("billing/subscription", subscription.subscription, name="api-billing-subscription"),
    path("billing/subscription/upgrade", subscription.subscription_upgrade, name="api-billing-upgrade"),
    path("billing/subscription/limits", subscription.subscription_limits, name="api-billing-limits"),
    path("billing/credits", subscription.credits, name="api-billing-credits"),
    path("billing/usage", usage.usage, name="api-billing-usage"),
]
