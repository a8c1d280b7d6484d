"""The credit ledger: the only code that changes a balance.

`post()` writes one entry and moves the cached balance in the same transaction, with a conditional
update that can never take it below zero (the database check backs it up). An idempotency key that
was used before returns the earlier entry and changes nothing, so a retried task, a replayed Stripe
event or a double click are harmless.

Runs: `reserve()` before a run starts (refused with `InsufficientCredits`), then `settle()` at the
end in the run's own transaction: the reservation is released and the actual usage charged (capped at
what the organization has), so a failed or cancelled run pays only for what it used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from billing.models import ZERO, BillingAccount, CreditTransaction, Plan

logger = logging.getLogger(__name__)
Q4 = Decimal("0.0001")
T = CreditTransaction.Type


class InsufficientCredits(Exception):
    """Not enough credits. `needed` and `available` are for the message and the 402 body."""

    def __init__(self, needed: Decimal, available: Decimal):
        self.needed, self.available = needed, available
        super().__init__(
            f"Not enough credits: this needs about {needed.quantize(Decimal('0.01'))} and the organization "
            f"has {available.quantize(Decimal('0.01'))}. Add credits to continue."
        )


def q(value: Any) -> Decimal:
    return Decimal(value).quantize(Q4, rounding=ROUND_HALF_UP)


def free_plan() -> Plan:
    plan = Plan.objects.filter(slug="free").first()
    if plan is None:  # the data migration seeds it; tests that flush tables get it back here
        from billing.catalog import sync_catalog

        sync_catalog()
        plan = Plan.objects.get(slug="free")
    return plan


def account_for(org: Any) -> BillingAccount:
    """The organization's billing account, created on first use with the Free plan and its grant."""
    org_id = org if isinstance(org, int) else org.pk
    account = BillingAccount.objects.filter(organization_id=org_id).select_related("plan").first()
    if account is not None:
        return account
    plan = free_plan()
    try:
        with transaction.atomic():
            account = BillingAccount.objects.create(organization_id=org_id, plan=plan)
    except IntegrityError:
        return BillingAccount.objects.select_related("plan").get(organization_id=org_id)
    if plan.signup_credits > 0:
        expires = (
            timezone.now() + timedelta(days=plan.signup_credits_expire_days)
            if plan.signup_credits_expire_days
            else None
        )
        post(
            org=org_id,
            type=T.GRANT,
            amount=plan.signup_credits,
            key="signup",
            description=f"{plan.name} plan: sign-up credits",
            expires_at=expires,
        )
        account.refresh_from_db()
    return account


def balance(org: Any) -> Decimal:
    return account_for(org).balance


def post(
    *,
    org: Any,
    type: str,
    amount: Any,
    key: str,
    description: str = "",
    allow_partial: bool = False,
    **refs: Any,
) -> CreditTransaction:
    """Write one entry and move the balance. Raises InsufficientCredits when a debit does not fit,
    unless `allow_partial`, which debits what there is (usage that already happened)."""
    org_id = org if isinstance(org, int) else org.pk
    amount = q(amount)
    existing = CreditTransaction.objects.filter(organization_id=org_id, idempotency_key=key).first()
    if existing is not None:
        return existing
    account_for(org_id)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                if amount < 0 and allow_partial:
                    # Usage that already happened: take what there is (the row lock keeps it exact).
                    cursor.execute(
                        "SELECT balance FROM billing_billingaccount WHERE organization_id = %s FOR UPDATE",
                        [org_id],
                    )
                    current = cursor.fetchone()[0]
                    amount = -min(q(current), -amount)
                cursor.execute(
                    "UPDATE billing_billingaccount SET balance = balance + %s, updated_at = now() "
                    "WHERE organization_id = %s AND balance + %s >= 0 RETURNING balance",
                    [amount, org_id, amount],
                )
                row = cursor.fetchone()
                if row is None:
                    available = (
                        BillingAccount.objects.filter(organization_id=org_id)
                        .values_list("balance", flat=True)
                        .first()
                        or ZERO
                    )
                    raise InsufficientCredits(-amount, available)
                new_balance = row[0]
            entry = CreditTransaction.objects.create(
                organization_id=org_id,
                type=type,
                amount=amount,
                balance_after=new_balance,
                idempotency_key=key,
                description=description[:300],
                **refs,
            )
    except IntegrityError:
        # The same key raced in from elsewhere: that entry stands, this one (and its balance move) is undone.
        return CreditTransaction.objects.get(organization_id=org_id, idempotency_key=key)
    if amount < 0:
        transaction.on_commit(lambda: _check_alerts(org_id))
    elif type in (T.GRANT, T.PURCHASE, T.ADJUSTMENT, T.REFUND) and amount > 0:
        transaction.on_commit(lambda: _after_top_up(org_id))
    return entry


# ------------------------------------------------------------------ runs


@dataclass
class Reservation:
    key: str
    amount: Decimal


def reserve(*, org: Any, amount: Any, key: str, description: str = "", **refs: Any) -> Reservation | None:
    """Hold credits for a run before it starts. Nothing to hold (a free model) is None."""
    amount = q(amount)
    if amount <= 0:
        return None
    post(org=org, type=T.RESERVATION, amount=-amount, key=key, description=description, **refs)
    return Reservation(key=key, amount=amount)


def settle(
    *,
    org: Any,
    reservation_key: str,
    usage: Any,
    usage_key: str,
    description: str = "",
    **refs: Any,
) -> Decimal:
    """Release a reservation and charge the actual usage (capped at what there is). Idempotent by
    keys. Returns what was charged."""
    org_id = org if isinstance(org, int) else org.pk
    held = (
        CreditTransaction.objects.filter(
            organization_id=org_id, idempotency_key=reservation_key, type=T.RESERVATION
        )
        .values_list("amount", flat=True)
        .first()
    )
    with transaction.atomic():
        if held is not None and held < 0:
            post(
                org=org_id,
                type=T.RELEASE,
                amount=-held,
                key=f"{reservation_key}:release",
                description=f"Release: {description}"[:300],
                **refs,
            )
        usage = q(usage)
        if usage <= 0:
            return ZERO
        entry = post(
            org=org_id,
            type=T.USAGE,
            amount=-usage,
            key=usage_key,
            description=description,
            allow_partial=True,
            **refs,
        )
    if -entry.amount < usage:
        logger.warning("org %s: usage %s charged only %s (balance ran out)", org_id, usage, -entry.amount)
    return -entry.amount


def release(*, org: Any, reservation_key: str, description: str = "") -> None:
    settle(
        org=org,
        reservation_key=reservation_key,
        usage=0,
        usage_key=f"{reservation_key}:nousage",
        description=description,
    )


# ------------------------------------------------------------- follow-ups


def _check_alerts(org_id: int) -> None:
    try:
        from billing.tasks import check_alerts

        check_alerts.delay(org_id)
    except Exception:  # pragma: no cover - a notice must never break a charge
        logger.warning("could not queue the balance alerts of org %s", org_id, exc_info=True)


def _after_top_up(org_id: int) -> None:
    """Credits arrived: clear the low-balance flag and resume workflows paused for credits."""
    BillingAccount.objects.filter(organization_id=org_id).update(low_balance_notified=False)
    try:
        from workflows.engine import resume_credit_paused

        resume_credit_paused(org_id)
    except Exception:  # pragma: no cover
        logger.warning("could not resume the paused workflows of org %s", org_id, exc_info=True)


# ---------------------------------------------------------------- checks


def ledger_sum(org: Any) -> Decimal:
    org_id = org if isinstance(org, int) else org.pk
    total = CreditTransaction.objects.filter(organization_id=org_id).aggregate(s=Sum("amount"))["s"]
    return q(total or 0)


def reconcile() -> list[dict[str, Any]]:
    """Every account's cached balance against the sum of its entries. Returns the drifts (none is good)."""
    sums = dict(
        CreditTransaction.objects.order_by()
        .values_list("organization_id")
        .annotate(s=Sum("amount"))
        .values_list("organization_id", "s")
    )
    drifts = []
    for org_id, cached in BillingAccount.objects.values_list("organization_id", "balance"):
        expected = q(sums.get(org_id) or 0)
        if q(cached) != expected:
            drifts.append({"organization_id": org_id, "cached": str(cached), "ledger": str(expected)})
    return drifts
