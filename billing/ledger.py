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

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from billing.models import ZERO, BillingAccount, CreditTransaction, Plan
from config.prepared import Prepared, insert_fields

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


# Read on every run (plan limits): compiled once.
_ACCOUNT = Prepared(
    lambda org_id: BillingAccount.objects.filter(organization_id=org_id).select_related("plan"), int
)


def account_for(org: Any) -> BillingAccount:
    """The organization's billing account, created on first use with the Free plan and its grant."""
    org_id = org if isinstance(org, int) else org.pk
    account = _ACCOUNT.first(org_id)
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
    entry = CreditTransaction(
        organization_id=org_id,
        type=type,
        amount=amount,
        balance_after=ZERO,
        idempotency_key=key,
        description=description[:300],
        **refs,
    )
    # `allow_partial` debits what there is: the amount is capped at the locked balance.
    parts = [(entry, "GREATEST(%s, -cur.balance)" if amount < 0 and allow_partial else "%s", [amount])]
    moved = _apply(org_id, parts)
    if moved is None:  # no account yet: create it (with its sign-up grant), then try again
        account_for(org_id)
        moved = _apply(org_id, parts)
    if moved is None or not moved.applied:
        existing = CreditTransaction.objects.filter(organization_id=org_id, idempotency_key=key).first()
        if existing is not None:
            return existing  # a replay: that entry stands, the balance did not move again
        raise InsufficientCredits(-amount, moved.before if moved else ZERO)
    if amount < 0 and moved.alert_due:
        transaction.on_commit(lambda: _check_alerts(org_id))
    elif type in (T.GRANT, T.PURCHASE, T.ADJUSTMENT, T.REFUND) and amount > 0:
        transaction.on_commit(lambda: _after_top_up(org_id))
    return entry


def _this_month() -> str:
    """The month budget alerts are keyed by (billing.caps marks `budget_alerted_month` with it)."""
    from billing.limits import month_start  # limits imports this module

    return month_start().strftime("%Y-%m")


@dataclass
class _Moved:
    before: Decimal  # the balance before the move
    amounts: list[Decimal]  # what each entry moved
    applied: bool  # False: it did not fit, or an entry with its key exists (nothing moved)
    alert_due: bool  # a low-balance or budget alert may be due (the alert task decides for real)


def _apply(org_id: int, parts: list[tuple[CreditTransaction, str, list[Any]]]) -> _Moved | None:
    """Write entries and move the balance by their sum, in ONE statement: the balance row is locked,
    each entry's amount is computed from the balance (an SQL expression over `cur.balance`), the
    entries are inserted, and the balance is moved only if they all were (none had a used key) and
    it stays >= 0. One statement means no savepoint and no round trip while the organization's
    balance row is locked, which every run of the organization passes through. None: no account."""
    if not connection.in_atomic_block:
        with transaction.atomic():  # so that the check below can undo a partial write
            return _apply(org_id, parts)
    params: list[Any] = [org_id]
    amounts = []
    for n, (_, expression, values) in enumerate(parts):
        amounts.append(f"({expression})::numeric AS a{n}")
        params.extend(values)
    selects: list[str] = []
    fields = insert_fields(CreditTransaction)
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    running = "v.before"
    for n, (entry, _, _) in enumerate(parts):
        running = f"{running} + v.a{n}"
        values = []
        for f in fields:
            if f.attname == "amount":
                values.append(f"v.a{n}")
            elif f.attname == "balance_after":
                values.append(f"({running})")
            else:
                values.append(f"CAST(%s AS {f.cast_db_type(connection)})")  # typed: the SELECTs are a UNION
                params.append(f.get_db_prep_save(f.pre_save(entry, True), connection))
        selects.append(f"SELECT {', '.join(values)} FROM v WHERE {running} >= 0")  # noqa: S608  # nosec B608
    total = " + ".join(f"v.a{n}" for n in range(len(parts)))
    params += [org_id, len(parts), _this_month()]
    sql = (
        "WITH cur AS (SELECT balance FROM billing_billingaccount WHERE organization_id = %s FOR UPDATE), "  # noqa: S608  # nosec B608 - built from the model's own columns
        f"v AS (SELECT cur.balance AS before, {', '.join(amounts)} FROM cur), "
        f"ins AS (INSERT INTO billing_credittransaction ({columns}) {' UNION ALL '.join(selects)} "
        "ON CONFLICT (organization_id, idempotency_key) DO NOTHING RETURNING id, idempotency_key), "
        f"moved AS (UPDATE billing_billingaccount a SET balance = v.before + {total}, updated_at = now() "
        "FROM v WHERE a.organization_id = %s AND (SELECT count(*) FROM ins) = %s "
        "RETURNING a.balance, " + _ALERT_MAY_BE_DUE + ") "  # noqa: S608  # nosec B608
        f"SELECT v.before, {', '.join(f'v.a{n}' for n in range(len(parts)))}, moved.balance IS NOT NULL, "
        "COALESCE(moved.alert, false), (SELECT json_object_agg(idempotency_key, id) FROM ins) "
        "FROM v LEFT JOIN moved ON true"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    before, moved_amounts = q(row[0]), [q(a) for a in row[1:-3]]
    applied, alert_due, ids = row[-3], row[-2], row[-1]
    if isinstance(ids, str):  # json arrives parsed unless a text loader is registered for it
        ids = json.loads(ids)
    if applied:
        running_balance = before
        for (entry, _, _), amount in zip(parts, moved_amounts, strict=True):
            running_balance += amount
            entry.amount, entry.balance_after = amount, running_balance
            entry.pk = ids[entry.idempotency_key]
            entry._state.adding, entry._state.db = False, connection.alias
    elif ids:
        # Some entries went in and others met a used key: only a settle racing a replay of the same
        # run does that. Nothing moved; the caller's transaction is undone with these rows.
        raise IntegrityError(f"ledger entries of org {org_id} were partly written already; nothing moved")
    return _Moved(before=before, amounts=moved_amounts, applied=bool(applied), alert_due=bool(alert_due))


# Whether a low-balance or budget alert may be due, read off the account row `a` an UPDATE has just
# written, so the alert task is queued only then, not after every debit (the task decides for real).
_ALERT_MAY_BE_DUE = (
    "((a.balance < a.low_balance_threshold AND NOT a.low_balance_notified) "
    "OR (a.monthly_budget IS NOT NULL AND a.budget_alerted_month <> %s)) AS alert"
)


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
    release_key = f"{reservation_key}:release"
    # One read: the reservation's amount, and whether any entry of this settle exists already.
    found = {
        key: (type_, amount)
        for key, type_, amount in CreditTransaction.objects.filter(
            organization_id=org_id, idempotency_key__in=[reservation_key, release_key, usage_key]
        ).values_list("idempotency_key", "type", "amount")
    }
    held_type, held = found.get(reservation_key, (None, None))
    if held_type != T.RESERVATION:
        held = None
    released = -held if held is not None and held < 0 else ZERO
    usage = q(usage)
    charged = None
    if release_key not in found and usage_key not in found:
        charged = _settle_at_once(
            org_id, reservation_key, released, usage, usage_key, description=description, **refs
        )
    if charged is None:  # a replay, a release written before, or no account yet: entry by entry
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
    """The release and the usage as one statement (a run's final transaction stays short). None when
    that cannot be done: an entry already exists, or there is no account."""
    if released <= 0 and usage <= 0:
        return ZERO
    parts: list[tuple[CreditTransaction, str, list[Any]]] = []
    if released > 0:
        release = CreditTransaction(
            organization_id=org_id,
            type=T.RELEASE,
            balance_after=ZERO,
            idempotency_key=f"{reservation_key}:release",
            description=f"Release: {description}"[:300],
            **refs,
        )
        parts.append((release, "%s", [released]))
    if usage > 0:
        charge = CreditTransaction(
            organization_id=org_id,
            type=T.USAGE,
            balance_after=ZERO,
            idempotency_key=usage_key,
            description=description[:300],
            **refs,
        )
        # The usage takes what there is, after the release.
        parts.append((charge, "-LEAST(%s, cur.balance + %s)", [usage, max(released, ZERO)]))
    moved = _apply(org_id, parts)
    if moved is None or not moved.applied:
        return None
    if usage <= 0:
        return ZERO
    if moved.alert_due:
        transaction.on_commit(lambda: _check_alerts(org_id))
    return -moved.amounts[-1]


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
