"""The credit ledger: the only code that changes a balance.

`post()` writes one entry and moves the cached balance in the same transaction, in one statement
(billing/moves.py) that can never take it below zero (the database check backs it up). An idempotency key that
was used before returns the earlier entry and changes nothing, so a retried task, a replayed Stripe
event or a double click are harmless.

Runs: `reserve()` before a run starts (refused with `InsufficientCredits`), then `settle()` at the
end in the run's own transaction: the reservation is released and the actual usage charged (capped at
what the organization has), so a failed or cancelled run pays only for what it used. Both can ride
with the COMMIT of the run's transaction (`at_commit`), so the balance row, which every run of the
organization passes twice, is locked only inside the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from billing import moves
from billing.models import ZERO, BillingAccount, CreditTransaction, Plan
from billing.moves import Moved, q
from config.prepared import Prepared

logger = logging.getLogger(__name__)
T = CreditTransaction.Type


class InsufficientCredits(Exception):
    """Not enough credits. `needed` and `available` are for the message and the 402 body."""

    def __init__(self, needed: Decimal, available: Decimal):
        self.needed, self.available = needed, available
        super().__init__(
            f"Not enough credits: this needs about {needed.quantize(Decimal('0.01'))} and the organization "
            f"has {available.quantize(Decimal('0.01'))}. Add credits to continue."
        )


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
    entry = moves.entry(org_id, type, key, description, refs)
    # `allow_partial` debits what there is: the amount is capped at the locked balance.
    parts = [(entry, "GREATEST(%s, -cur.balance)" if amount < 0 and allow_partial else "%s", [amount])]
    moved = moves.apply(org_id, parts)
    if moved is None:  # no account yet: create it (with its sign-up grant), then try again
        account_for(org_id)
        moved = moves.apply(org_id, parts)
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


# ------------------------------------------------------------------ runs


@dataclass
class Reservation:
    key: str
    amount: Decimal


def reserve(
    *, org: Any, amount: Any, key: str, description: str = "", at_commit: bool = False, **refs: Any
) -> Reservation | None:
    """Hold credits for a run before it starts. Nothing to hold (a free model) is None.

    `at_commit`: the hold is sent with the COMMIT of the caller's transaction (`moves.apply_at_commit`),
    which the caller must be the outermost of; too little credit then fails that commit with an
    IntegrityError that `refusal()` turns into `InsufficientCredits`, and the transaction is undone.
    Outside such a transaction the hold is made at once, as without it."""
    amount = q(amount)
    if amount <= 0:
        return None
    org_id = org if isinstance(org, int) else org.pk
    if at_commit:
        entry = moves.entry(org_id, T.RESERVATION, key, description, refs)

        def held(moved: Moved | None) -> None:
            if moved is None:  # no account row to move: make it and hold now (the run is committed;
                # a refusal is only logged, and the settle charges what there is)
                try:
                    post(
                        org=org_id,
                        type=T.RESERVATION,
                        amount=-amount,
                        key=key,
                        description=description,
                        **refs,
                    )
                except InsufficientCredits:
                    logger.warning(
                        "org %s: run reservation %s found too little credit after its commit", org_id, key
                    )
            elif moved.applied and moved.alert_due:
                _check_alerts(org_id)

        if moves.apply_at_commit(org_id, [(entry, "%s", [-amount])], strict=True, done=held):
            return Reservation(key=key, amount=amount)
    post(org=org_id, type=T.RESERVATION, amount=-amount, key=key, description=description, **refs)
    return Reservation(key=key, amount=amount)


def refusal(exc: BaseException, org: Any, needed: Any) -> InsufficientCredits | None:
    """The `InsufficientCredits` behind a commit that failed on the balance check (an `at_commit`
    hold that did not fit), or None for any other error."""
    cause = getattr(exc, "__cause__", None)
    diag = getattr(cause, "diag", None)
    if not isinstance(exc, IntegrityError) or getattr(diag, "constraint_name", None) != moves.NOT_NEGATIVE:
        return None
    return InsufficientCredits(q(needed), balance(org))


# One read before a settle: the reservation's amount, and whether an entry of the settle exists.
_SETTLE_ENTRIES = Prepared(
    lambda org_id, reservation, release, usage: CreditTransaction.objects.filter(
        Q(idempotency_key=reservation) | Q(idempotency_key=release) | Q(idempotency_key=usage),
        organization_id=org_id,
    ).values_list("idempotency_key", "type", "amount"),
    int,
    str,
    str,
    str,
)


def settle(
    *,
    org: Any,
    reservation_key: str,
    usage: Any,
    usage_key: str,
    description: str = "",
    at_commit: bool = False,
    known: dict[str, tuple[str, Decimal]] | None = None,
    **refs: Any,
) -> Decimal | None:
    """Release a reservation and charge the actual usage (capped at what there is). Idempotent by
    keys. Returns what was charged.

    `at_commit`: the release and the charge are sent with the COMMIT of the caller's transaction,
    which the caller must be the outermost of (see `reserve`); the charge is then known only after
    the commit, and None is returned. A replay, or a settle outside such a transaction, is made at
    once as without it.

    `known`: the settle's entries (key: type and amount) as the caller read them already, so the
    settle does not look them up (an agent run reads them with its claim, `hooks.settle_reads`). They
    decide the amount released and whether to move in one statement. If an entry was written after
    they were read, that statement writes nothing: all there, it is a replay and goes entry by entry;
    some there, it raises IntegrityError ("partly written"), undoing the caller's transaction."""
    org_id = org if isinstance(org, int) else org.pk
    release_key = f"{reservation_key}:release"
    found = (
        known
        if known is not None
        else {
            key: (type_, amount)
            for key, type_, amount in _SETTLE_ENTRIES.rows(org_id, reservation_key, release_key, usage_key)
        }
    )
    held_type, held = found.get(reservation_key, (None, None))
    if held_type != T.RESERVATION:
        held = None
    released = -held if held is not None and held < 0 else ZERO
    usage = q(usage)
    by_entries = partial(
        _settle_by_entries,
        org_id,
        reservation_key,
        released,
        usage,
        usage_key,
        description=description,
        **refs,
    )
    charged = None
    if release_key not in found and usage_key not in found:
        parts = moves.settle_parts(org_id, reservation_key, released, usage, usage_key, description, refs)
        if not parts:
            return ZERO
        if at_commit:

            def settled(moved: Moved | None) -> None:
                try:
                    _after_settle(org_id, usage, moved, by_entries)
                except Exception:  # the run is committed already: a failed charge must not undo it
                    logger.exception(
                        "org %s: the settle of %s failed after its commit", org_id, reservation_key
                    )

            if moves.apply_at_commit(org_id, parts, strict=True, done=settled):
                return None
        charged = _after_settle(org_id, usage, moves.apply(org_id, parts), None)
    if charged is None:  # a replay, a release written before, or no account yet: entry by entry
        charged = by_entries()
    return charged


def _after_settle(
    org_id: int, usage: Decimal, moved: Moved | None, by_entries: Callable[[], Decimal] | None
) -> Decimal | None:
    """What a one-statement settle charged, its alert queued. When it did not move (an entry exists
    already, or no account), the settle entry by entry (`by_entries`, after a commit) or None."""
    if moved is None or not moved.applied:
        return by_entries() if by_entries is not None else None
    if usage <= 0:
        return ZERO
    if moved.alert_due:
        if connection.in_atomic_block:
            transaction.on_commit(lambda: _check_alerts(org_id))
        else:
            _check_alerts(org_id)
    charged = -moved.amounts[-1]
    if charged < usage:
        logger.warning("org %s: usage %s charged only %s (balance ran out)", org_id, usage, charged)
    return charged


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
    charged = -entry.amount
    if charged < usage:
        logger.warning("org %s: usage %s charged only %s (balance ran out)", org_id, usage, charged)
    return charged


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
