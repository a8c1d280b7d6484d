"""What Stripe's events mean for an organization: credits bought, a plan paid for, changed or ended.

Called by the dj-stripe handlers in `billing.webhooks`, inside the verified webhook's transaction.

- **Credits are granted idempotently**, keyed by the Stripe object: `stripe:cs:<checkout session>` for
  a pack and `stripe:in:<invoice>` for a plan's monthly credits. The same event delivered three times,
  or the two events Stripe sends for one paid invoice, grant once. A renewal whose credits the hourly
  allocation (`billing.tasks`, key `allocation:<org>:<YYYY-MM>`) already granted is not paid twice;
  the other way round, the invoice moves `current_period_end` / `last_allocation_at` on, so the
  allocation finds nothing due.
- **Plan state follows the newest event.** Each change carries the event's `created` time and is
  applied only if it is not older than `BillingAccount.last_stripe_event_at`, so an older
  `customer.subscription.updated` arriving after a newer one changes nothing. Grants never wait on
  that check: an invoice paid earlier still pays out when its event comes late.

Payloads are read in both shapes Stripe has used: `invoice.subscription` and `lines[].price` (API
versions before 2025-03) and `invoice.parent.subscription_details` and `lines[].pricing` (after).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Q
from django.utils import timezone

from billing import ledger
from billing.models import BillingAccount, CreditTransaction, Plan

logger = logging.getLogger(__name__)
T = CreditTransaction.Type

# Stripe statuses in which the organization keeps its paid plan; anything else falls back to Free.
PAID_STATUSES = {"active", "trialing", "past_due"}
ENDED_STATUSES = {"canceled", "unpaid", "incomplete_expired"}
# Invoices that start or renew a period pay out the monthly credits; prorations do not.
GRANTING_REASONS = {"subscription_create", "subscription_cycle", "subscription", None, ""}


def dig(obj: Any, path: str, default: Any = None) -> Any:
    """obj["a"]["b"]["c"] for "a.b.c", or default when any step is missing."""
    for part in path.split("."):
        if isinstance(obj, dict):
            obj = obj.get(part)
        elif isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        else:
            return default
        if obj is None:
            return default
    return obj


def _id(value: Any) -> str:
    """A Stripe reference is an id or an expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return str(value or "")


def _when(timestamp: Any) -> datetime | None:
    return datetime.fromtimestamp(int(timestamp), tz=UTC) if timestamp else None


# --------------------------------------------------------------- lookups


def account_for_object(obj: dict[str, Any], metadata: dict[str, Any] | None = None) -> BillingAccount | None:
    """The billing account a Stripe object belongs to: by its customer, else by the org id we put in
    the metadata (or the Checkout client_reference_id). None when it is not one of ours."""
    customer = _id(obj.get("customer"))
    if customer:
        account = BillingAccount.objects.select_related("plan").filter(stripe_customer_id=customer).first()
        if account is not None:
            return account
    metadata = metadata if metadata is not None else (obj.get("metadata") or {})
    org_id = str(metadata.get("org_id") or obj.get("client_reference_id") or "")
    if not org_id.isdigit():
        return None
    from accounts.models import Organization

    if not Organization.objects.filter(pk=int(org_id)).exists():
        return None
    account = ledger.account_for(int(org_id))
    if customer and not account.stripe_customer_id:
        BillingAccount.objects.filter(pk=account.pk, stripe_customer_id="").update(
            stripe_customer_id=customer
        )
        account.refresh_from_db()
    return account


def plan_for_price(price_id: str) -> Plan | None:
    if not price_id:
        return None
    return Plan.objects.filter(Q(stripe_price_monthly=price_id) | Q(stripe_price_yearly=price_id)).first()


def plan_and_interval(*, price_id: str, interval: str, metadata: dict[str, Any]) -> tuple[Plan | None, str]:
    """The plan a subscription is for: its Stripe price, else the plan slug in its metadata."""
    plan = plan_for_price(price_id)
    if plan is not None and not interval:
        interval = "year" if plan.stripe_price_yearly == price_id else "month"
    if plan is None and metadata.get("plan"):
        plan = Plan.objects.filter(slug=metadata["plan"]).first()
    interval = interval or str(metadata.get("interval") or "")
    if interval not in BillingAccount.Interval.values:
        interval = BillingAccount.Interval.MONTH
    return plan, interval


def _apply(account: BillingAccount, at: datetime, **fields: Any) -> bool:
    """Write plan state unless a newer Stripe event has already been applied. One conditional update,
    so two events racing each other still leave the newer one's state."""
    updated = (
        BillingAccount.objects.filter(pk=account.pk)
        .filter(Q(last_stripe_event_at__isnull=True) | Q(last_stripe_event_at__lte=at))
        .update(**fields, last_stripe_event_at=at, updated_at=timezone.now())
    )
    if not updated:
        logger.info(
            "org %s: ignored a Stripe event from %s (a newer one was applied)", account.organization_id, at
        )
    return bool(updated)


# ---------------------------------------------------------------- events


def checkout_completed(*, session: dict[str, Any], at: datetime) -> None:
    """A Checkout Session finished. A pack grants its credits once it is paid; a subscription records
    the subscription (its invoice grants the credits)."""
    metadata = session.get("metadata") or {}
    account = account_for_object(session, metadata)
    if account is None:
        logger.info("Checkout Session %s is not for an organization here; ignored", session.get("id"))
        return
    if session.get("mode") == "payment" and metadata.get("kind") == "pack":
        if session.get("payment_status") not in ("paid", "no_payment_required"):
            return  # a delayed payment method: checkout.session.async_payment_succeeded follows
        credits = Decimal(str(metadata.get("credits") or "0"))
        if credits <= 0:
            logger.error("Checkout Session %s has no credits in its metadata", session.get("id"))
            return
        ledger.post(
            org=account.organization_id,
            type=T.PURCHASE,
            amount=credits,
            key=f"stripe:cs:{session['id']}",
            description=f"Bought {credits:,.0f} credits",
            stripe_object_id=session["id"],
            user_id=_user_id(account, metadata),
        )
    elif session.get("mode") == "subscription":
        subscription = _id(session.get("subscription"))
        plan, interval = plan_and_interval(price_id="", interval="", metadata=metadata)
        fields: dict[str, Any] = {"stripe_subscription_id": subscription, "interval": interval}
        if plan is not None and session.get("payment_status") in ("paid", "no_payment_required"):
            fields.update(plan=plan, subscription_status="active")
        if subscription:
            _apply(account, at, **fields)


def _user_id(account: BillingAccount, metadata: dict[str, Any]) -> int | None:
    """The buyer, when they are still a member (for "who paid" in the history)."""
    raw = str(metadata.get("user_id") or "")
    if not raw.isdigit():
        return None
    from accounts.models import Membership

    exists = Membership.objects.filter(organization_id=account.organization_id, user_id=int(raw)).exists()
    return int(raw) if exists else None


def invoice_paid(*, invoice: dict[str, Any], at: datetime) -> None:
    """A subscription invoice was paid: grant the plan's monthly credits (once per invoice) and, unless
    a newer event got there first, record the plan, its period and the active status."""
    subscription = _id(invoice.get("subscription")) or _id(
        dig(invoice, "parent.subscription_details.subscription")
    )
    if not subscription:
        return  # a one-off invoice: packs are paid through Checkout in payment mode
    metadata = (
        dig(invoice, "parent.subscription_details.metadata")
        or dig(invoice, "subscription_details.metadata")
        or {}
    )
    account = account_for_object(invoice, metadata)
    if account is None:
        logger.info("Invoice %s is not for an organization here; ignored", invoice.get("id"))
        return
    line = _subscription_line(invoice)
    price_id = _id(dig(line, "price")) or _id(dig(line, "pricing.price_details.price"))
    plan, interval = plan_and_interval(
        price_id=price_id, interval=str(dig(line, "price.recurring.interval") or ""), metadata=metadata
    )
    if plan is None:
        logger.error(
            "Invoice %s: no plan matches price %r or metadata %r", invoice.get("id"), price_id, metadata
        )
        return
    period_start = _when(dig(line, "period.start"))
    if (
        invoice.get("billing_reason") in GRANTING_REASONS
        and plan.monthly_credits > 0
        and not (
            invoice.get("billing_reason") == "subscription_cycle"
            and _allocated_by_beat(account, period_start)
        )
    ):
        key = f"stripe:in:{invoice['id']}"
        is_new = not CreditTransaction.objects.filter(
            organization_id=account.organization_id, idempotency_key=key
        ).exists()
        ledger.post(
            org=account.organization_id,
            type=T.GRANT,
            amount=plan.monthly_credits,
            key=key,
            description=f"{plan.name} plan: monthly credits",
            stripe_object_id=invoice["id"],
        )
        if is_new:
            BillingAccount.objects.filter(pk=account.pk).update(last_allocation_at=timezone.now())
    _apply(
        account,
        at,
        plan=plan,
        interval=interval,
        stripe_subscription_id=subscription,
        subscription_status="active",
        current_period_end=_when(dig(line, "period.end")),
    )


def _allocated_by_beat(account: BillingAccount, period_start: datetime | None) -> bool:
    """The hourly allocation (billing.tasks) reached this renewal before its invoice was paid: it
    has granted this period's credits already, under its own key."""
    if period_start is None:
        return False
    from billing.tasks import allocation_key

    key = allocation_key(account.organization_id, period_start)
    return CreditTransaction.objects.filter(
        organization_id=account.organization_id, idempotency_key=key
    ).exists()


def _subscription_line(invoice: dict[str, Any]) -> dict[str, Any]:
    """The invoice line for the plan itself (not a proration), else the first line."""
    lines = dig(invoice, "lines.data") or []
    for line in lines:
        if not line.get("proration") and (
            dig(line, "price.recurring") or dig(line, "pricing.price_details.price")
        ):
            return dict(line)
    return dict(lines[0]) if lines else {}


def subscription_changed(*, subscription: dict[str, Any], at: datetime, deleted: bool = False) -> None:
    """A subscription was created, updated or deleted: follow its plan and status. Ended ones take the
    organization back to Free, but only if it is the organization's current subscription."""
    metadata = subscription.get("metadata") or {}
    account = account_for_object(subscription, metadata)
    if account is None:
        logger.info("Subscription %s is not for an organization here; ignored", subscription.get("id"))
        return
    sub_id = str(subscription.get("id") or "")
    status = "canceled" if deleted else str(subscription.get("status") or "")
    current = account.stripe_subscription_id
    if status in ENDED_STATUSES:
        if current and current != sub_id:
            return  # an old subscription ending; the organization has moved on to another one
        _apply(
            account,
            at,
            plan=ledger.free_plan(),
            interval=BillingAccount.Interval.MONTH,
            stripe_subscription_id="",
            subscription_status=status,
            current_period_end=None,
        )
        return
    if (
        current
        and current != sub_id
        and account.subscription_status in PAID_STATUSES
        and status not in PAID_STATUSES
    ):
        return  # a new, not yet paid subscription does not displace the live one
    item = dig(subscription, "items.data.0") or {}
    plan, interval = plan_and_interval(
        price_id=_id(item.get("price")),
        interval=str(dig(item, "price.recurring.interval") or ""),
        metadata=metadata,
    )
    period_end = _when(subscription.get("current_period_end") or item.get("current_period_end"))
    fields: dict[str, Any] = {
        "stripe_subscription_id": sub_id,
        "subscription_status": status,
        "current_period_end": period_end,
    }
    if status in PAID_STATUSES and plan is not None:
        fields.update(plan=plan, interval=interval)
    _apply(account, at, **fields)
