"""Payments through Stripe: Checkout for credit packs (one-time) and plans (recurring), and the
customer portal for managing a subscription. What Stripe then reports back arrives as webhooks
(`billing.webhooks` -> `billing.stripe_sync`); nothing here grants credits or changes a plan.

Without STRIPE_SECRET_KEY every entry point refuses with `payments_not_configured` (503), so the pages
and the API can say so while plans, usage and admin grants keep working.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import stripe
from django.conf import settings
from django.urls import reverse

from accounts.models import Organization, User
from accounts.services import ServiceError
from billing.ledger import account_for
from billing.models import BillingAccount, CreditPack, Plan

logger = logging.getLogger(__name__)

PACK = "pack"
SUBSCRIPTION = "subscription"
INTERVALS = (BillingAccount.Interval.MONTH, BillingAccount.Interval.YEAR)
# Subscriptions in these states are the organization's live subscription: changes go through the portal.
LIVE_STATUSES = {"active", "trialing", "past_due"}


@dataclass(frozen=True)
class Redirect:
    """Where to send the buyer: a Checkout page or the customer portal."""

    kind: str  # "checkout" or "portal"
    url: str
    session_id: str = ""


def payments_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def _require_configured() -> None:
    if not payments_configured():
        raise ServiceError(
            "Payments are not configured on this server (STRIPE_SECRET_KEY is not set). "
            "Plans and usage still work, and staff can grant credits in the admin.",
            code="payments_not_configured",
            status=503,
        )


def _options(**extra: Any) -> dict[str, Any]:
    return {"api_key": settings.STRIPE_SECRET_KEY, **extra}


def _call(what: str, fn: Any, **params: Any) -> Any:
    """One Stripe API call; its failure becomes a 502 the caller can show (details stay in the log)."""
    try:
        return fn(**params)
    except stripe.StripeError as exc:
        logger.warning("Stripe refused to %s: %s", what, exc)
        raise ServiceError(
            f"The payment provider could not {what} just now. Try again in a moment.",
            code="payment_provider_error",
            status=502,
        )


def _site_url(name: str, query: str = "") -> str:
    return settings.SITE_URL.rstrip("/") + reverse(name) + query


# ------------------------------------------------------------- catalog


def pack_for(*, pack: str | None = None, credits: int | None = None) -> CreditPack:
    """The active pack named by slug, or the one with exactly that many credits."""
    if pack:
        found = CreditPack.objects.filter(slug=pack, is_active=True).first()
        if found is None:
            raise ServiceError(f"There is no credit pack {pack!r}.", code="unknown_pack")
        return found
    if credits is None or credits <= 0:
        raise ServiceError("Choose a credit pack, or a positive number of credits.", code="invalid_amount")
    found = CreditPack.objects.filter(credits=credits, is_active=True).first()
    if found is None:
        sizes = ", ".join(
            f"{n:,}" for n in CreditPack.objects.filter(is_active=True).values_list("credits", flat=True)
        )
        raise ServiceError(f"Credits come in packs of {sizes}.", code="unknown_pack")
    return found


def plan_for_purchase(slug: str) -> Plan:
    """A self-serve plan to subscribe to. Enterprise is by contract, Free needs no payment."""
    plan = Plan.objects.filter(slug=slug).first()
    if plan is None:
        raise ServiceError(f"There is no plan {slug!r}.", code="unknown_plan")
    if plan.is_custom:
        raise ServiceError(
            f"The {plan.name} plan is priced by contract: contact us and we will set it up.",
            code="contact_us",
        )
    if plan.price_monthly_cents == 0 and plan.price_yearly_cents == 0:
        raise ServiceError(
            f"The {plan.name} plan needs no payment: to move to it, cancel the paid subscription "
            "in the customer portal.",
            code="free_plan",
        )
    return plan


def _interval(interval: str) -> str:
    if interval not in INTERVALS:
        raise ServiceError("The billing interval is month or year.", code="invalid_interval")
    return interval


# ------------------------------------------------------------ customers


def customer_ensure(*, org: Organization, by: User | None) -> str:
    """The organization's Stripe customer id, created on first use."""
    _require_configured()
    account = account_for(org)
    if account.stripe_customer_id:
        return account.stripe_customer_id
    customer = _call(
        "create the customer",
        stripe.Customer.create,
        name=org.name,
        email=getattr(by, "email", None) or None,
        metadata={"org_id": str(org.pk), "org_slug": org.slug},
        # Two clicks racing here get the same customer back from Stripe.
        **_options(idempotency_key=f"agentos-org-{org.pk}-customer"),
    )
    updated = BillingAccount.objects.filter(pk=account.pk, stripe_customer_id="").update(
        stripe_customer_id=customer["id"]
    )
    if not updated:  # someone else stored one first: that one stands
        return BillingAccount.objects.values_list("stripe_customer_id", flat=True).get(pk=account.pk)
    return str(customer["id"])


# ------------------------------------------------------------- checkout


def create_checkout_session(
    *,
    org: Organization,
    by: User | None,
    kind: str,
    pack_slug: str | None = None,
    credits: int | None = None,
    plan_slug: str | None = None,
    interval: str = BillingAccount.Interval.MONTH,
) -> Redirect:
    """A Stripe Checkout Session for a credit pack (mode payment, at the plan's pack discount) or for
    a plan (mode subscription). The webhook that follows carries the org id and what was bought."""
    if kind == PACK:
        pack = pack_for(pack=pack_slug, credits=credits)
        _require_configured()
        return _pack_checkout(org=org, by=by, pack=pack)
    if kind == SUBSCRIPTION:
        plan = plan_for_purchase(plan_slug or "")
        interval = _interval(interval)
        _require_configured()
        return _plan_checkout(org=org, by=by, plan=plan, interval=interval)
    raise ServiceError("The checkout kind is pack or subscription.", code="invalid_kind")


def _urls() -> dict[str, str]:
    return {
        "success_url": _site_url("billing_index", "?checkout=success&session_id={CHECKOUT_SESSION_ID}"),
        "cancel_url": _site_url("billing_index", "?checkout=cancelled"),
    }


def _pack_checkout(*, org: Organization, by: User | None, pack: CreditPack) -> Redirect:
    account = account_for(org)
    customer = customer_ensure(org=org, by=by)
    price_cents = pack.price_for(account.plan)
    if pack.stripe_price and price_cents == pack.price_cents:
        line_item: dict[str, Any] = {"price": pack.stripe_price, "quantity": 1}
    else:  # the plan's discount, or no Stripe price set up for the pack
        line_item = {
            "price_data": {
                "currency": settings.STRIPE_CURRENCY,
                "unit_amount": price_cents,
                "product_data": {"name": f"{pack.credits:,} AgentOS credits"},
            },
            "quantity": 1,
        }
    metadata = {
        "org_id": str(org.pk),
        "kind": PACK,
        "pack": pack.slug,
        "credits": str(pack.credits),
        "user_id": str(getattr(by, "pk", "") or ""),
    }
    session = _call(
        "start the checkout",
        stripe.checkout.Session.create,
        mode="payment",
        customer=customer,
        client_reference_id=str(org.pk),
        line_items=[line_item],
        metadata=metadata,
        payment_intent_data={"metadata": metadata},
        **_urls(),
        **_options(),
    )
    return Redirect(kind="checkout", url=session["url"], session_id=session["id"])


def _plan_checkout(*, org: Organization, by: User | None, plan: Plan, interval: str) -> Redirect:
    customer = customer_ensure(org=org, by=by)
    price_id = (
        plan.stripe_price_yearly if interval == BillingAccount.Interval.YEAR else plan.stripe_price_monthly
    )
    if price_id:
        line_item: dict[str, Any] = {"price": price_id, "quantity": 1}
    else:  # no Stripe price set up in the admin: describe it inline
        amount = (
            plan.price_yearly_cents if interval == BillingAccount.Interval.YEAR else plan.price_monthly_cents
        )
        line_item = {
            "price_data": {
                "currency": settings.STRIPE_CURRENCY,
                "unit_amount": amount,
                "recurring": {"interval": interval},
                "product_data": {"name": f"AgentOS {plan.name} plan"},
            },
            "quantity": 1,
        }
    metadata = {
        "org_id": str(org.pk),
        "kind": SUBSCRIPTION,
        "plan": plan.slug,
        "interval": interval,
        "credits": str(int(plan.monthly_credits)),
    }
    session = _call(
        "start the checkout",
        stripe.checkout.Session.create,
        mode="subscription",
        customer=customer,
        client_reference_id=str(org.pk),
        line_items=[line_item],
        metadata=metadata,
        # Subscription events and invoices carry these too, so they map back to the org and the plan.
        subscription_data={"metadata": metadata},
        **_urls(),
        **_options(),
    )
    return Redirect(kind="checkout", url=session["url"], session_id=session["id"])


# --------------------------------------------------------------- portal


def create_portal_session(*, org: Organization, by: User | None) -> Redirect:
    """The Stripe customer portal, where the subscription is changed or cancelled."""
    _require_configured()
    account = account_for(org)
    if not account.stripe_customer_id:
        raise ServiceError(
            "This organization has not paid through Stripe yet: choose a plan first.",
            code="no_customer",
            status=409,
        )
    session = _call(
        "open the customer portal",
        stripe.billing_portal.Session.create,
        customer=account.stripe_customer_id,
        return_url=_site_url("billing_index"),
        **_options(),
    )
    return Redirect(kind="portal", url=session["url"], session_id=session["id"])


def subscription_change(*, org: Organization, by: User | None, plan_slug: str, interval: str) -> Redirect:
    """Move to a plan: Checkout when there is no live subscription, else the portal (Stripe prorates)."""
    account = account_for(org)
    plan = Plan.objects.filter(slug=plan_slug).first()
    if (
        plan is not None
        and not plan.is_custom
        and plan.price_monthly_cents == 0
        and account.stripe_subscription_id
    ):
        return create_portal_session(org=org, by=by)  # back to Free: cancel in the portal
    plan = plan_for_purchase(plan_slug)
    interval = _interval(interval)
    _require_configured()
    if account.stripe_subscription_id and account.subscription_status in LIVE_STATUSES:
        if account.plan_id == plan.pk and account.interval == interval:
            raise ServiceError(f"This organization is already on the {plan.name} plan.", code="same_plan")
        return create_portal_session(org=org, by=by)
    return _plan_checkout(org=org, by=by, plan=plan, interval=interval)
