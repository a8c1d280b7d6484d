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
    # The happy path is two statements: the conditional balance update and the entry. A replayed key
    # is caught by the unique constraint (the savepoint undoes the balance move) or, when the balance
    # no longer covers it, looked up before "insufficient" is reported.
    try:
        with transaction.atomic():
            moved = _move_balance(org_id, amount, allow_partial)
            if moved is None:
                existing = CreditTransaction.objects.filter(
                    organization_id=org_id, idempotency_key=key
                ).first()
                if existing is not None:
                    return existing
                if not BillingAccount.objects.filter(organization_id=org_id).exists():
                    account_for(org_id)  # first use: the account and its sign-up grant, then try again
                    moved = _move_balance(org_id, amount, allow_partial)
            if moved is None:
                available = (
                    BillingAccount.objects.filter(organization_id=org_id)
                    .values_list("balance", flat=True)
                    .first()
                    or ZERO
                )
                raise InsufficientCredits(-amount, available)
            amount, new_balance, alert_due = moved
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
        # The same key is already written (a replay, or a race): that entry stands, this balance move is undone.
        return CreditTransaction.objects.get(organization_id=org_id, idempotency_key=key)
    if amount < 0 and alert_due:
        transaction.on_commit(lambda: _check_alerts(org_id))
    elif type in (T.GRANT, T.PURCHASE, T.ADJUSTMENT, T.REFUND) and amount > 0:
        transaction.on_commit(lambda: _after_top_up(org_id))
    return entry


def _this_month() -> str:
    """The month budget alerts are keyed by (billing.caps marks `budget_alerted_month` with it)."""
    from billing.limits import month_start  # limits imports this module

    return month_start().strftime("%Y-%m")


# Whether a low-balance or budget alert may be due, read off the account row `a` an UPDATE has just
# written, so the alert task is queued only then, not after every debit (the task decides for real).
_ALERT_MAY_BE_DUE = (
    "(a.balance < a.low_balance_threshold AND NOT a.low_balance_notified) "
    "OR (a.monthly_budget IS NOT NULL AND a.budget_alerted_month <> %s)"
)
# Params: amount, org, amount, month. Applies `amount` only if the balance stays >= 0.
_MOVE_SQL = (
    "UPDATE billing_billingaccount a SET balance = a.balance + %s, updated_at = now() "  # noqa: S608  # nosec B608 - constant SQL
    "WHERE a.organization_id = %s AND a.balance + %s >= 0 RETURNING a.balance, " + _ALERT_MAY_BE_DUE
)
# Params: released, usage, released, org, org, month. The subquery locks the row and reads the balance
# before; the usage takes what there is.
_SETTLE_SQL = (
    "UPDATE billing_billingaccount a SET balance = old.balance + %s - LEAST(%s, old.balance + %s), "  # noqa: S608  # nosec B608 - constant SQL
    "updated_at = now() FROM (SELECT balance FROM billing_billingaccount WHERE organization_id = %s "
    "FOR UPDATE) old WHERE a.organization_id = %s RETURNING old.balance, a.balance, " + _ALERT_MAY_BE_DUE
)


def _move_balance(org_id: int, amount: Decimal, allow_partial: bool) -> tuple[Decimal, Decimal, bool] | None:
    """Apply `amount` to the balance if it stays >= 0: (amount applied, new balance, whether an alert
    may be due), or None when it does not fit or there is no account. `allow_partial` debits what
    there is (usage that already happened); the row lock keeps that exact."""
    with connection.cursor() as cursor:
        if amount < 0 and allow_partial:
            cursor.execute(
                "SELECT balance FROM billing_billingaccount WHERE organization_id = %s FOR UPDATE", [org_id]
            )
            current = cursor.fetchone()
            if current is None:
                return None
            amount = -min(q(current[0]), -amount)
        cursor.execute(_MOVE_SQL, [amount, org_id, amount, _this_month()])
        row = cursor.fetchone()
    if row is None:
        return None
    return amount, row[0], bool(row[1])


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
    released = -held if held is not None and held < 0 else ZERO
    usage = q(usage)
    charged = _settle_at_once(
        org_id, reservation_key, released, usage, usage_key, description=description, **refs
    )
    if charged is None:  # a replay, or no account yet: entry by entry, each idempotent
        charged = _settle_by_entries(
            org_id, reservation_key, released, usage, usage_key, description=description, **refs
        )
    if charged < usage:
        logger.warning("org %s: usage %s charged only %s (balance ran out)", org_id, usage, charged)
    return charged


def _settle_at_once(
    org_id: int,
    reservation_key: str,
    released: Decimal,
    usage: Decimal,
    usage_key: str,
    *,
    description: str,
    **refs: Any,
) -> Decimal | None:
    """The release and the usage as one balance move and one INSERT (a run's final transaction
    stays short). None when that cannot be done: an entry already exists, or there is no account."""
    if released <= 0 and usage <= 0:
        return ZERO
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_SETTLE_SQL, [released, max(usage, ZERO), released, org_id, org_id, _this_month()])
            row = cursor.fetchone()
            if row is None:
                return None
            before, after, alert_due = q(row[0]), q(row[1]), bool(row[2])
            entries = []
            if released > 0:
                entries.append(
                    CreditTransaction(
                        organization_id=org_id,
                        type=T.RELEASE,
                        amount=released,
                        balance_after=before + released,
                        idempotency_key=f"{reservation_key}:release",
                        description=f"Release: {description}"[:300],
                        **refs,
                    )
                )
            charged = before + released - after
            if usage > 0:
                entries.append(
                    CreditTransaction(
                        organization_id=org_id,
                        type=T.USAGE,
                        amount=-charged,
                        balance_after=after,
                        idempotency_key=usage_key,
                        description=description[:300],
                        **refs,
                    )
                )
            CreditTransaction.objects.bulk_create(entries)
    except IntegrityError:
        return None
    if usage > 0 and alert_due:
        transaction.on_commit(lambda: _check_alerts(org_id))
    return charged if usage > 0 else ZERO


def _settle_by_entries(
    org_id: int,
    reservation_key: str,
    released: Decimal,
    usage: Decimal,
    usage_key: str,
    *,
    description: str,
    **refs: Any,
) -> Decimal:
    with transaction.atomic():
        if released > 0:
            post(
                org=org_id,
                type=T.RELEASE,
                amount=released,
                key=f"{reservation_key}:release",
                description=f"Release: {description}"[:300],
                **refs,
            )
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
